"""A synthetic city: clustered merchants around a few dense centres, their hours and deals.

Deterministic for a seed. ``generate_city`` draws positions and categories first and
everything else after, so adding attributes never moves a merchant of an earlier city.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES, Category
from lbs.services.merchants import MerchantFields, import_merchants

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Category mix of a typical European city centre (shares sum to 1).
_CATEGORY_SHARES = {
    Category.restaurant: 0.16,
    Category.cafe: 0.10,
    Category.fast_food: 0.07,
    Category.bar: 0.06,
    Category.bakery: 0.03,
    Category.grocery: 0.08,
    Category.fashion: 0.10,
    Category.beauty: 0.08,
    Category.health: 0.05,
    Category.fitness: 0.03,
    Category.entertainment: 0.03,
    Category.culture: 0.02,
    Category.lodging: 0.03,
    Category.services: 0.07,
    Category.electronics: 0.03,
    Category.home: 0.03,
    Category.other: 0.03,
}

_SHOP = "Mo-Fr 10:00-20:00; Sa 10:00-18:00; Su 12:00-18:00"
# Typical OSM opening_hours per category, one picked at random; None (hours unknown) for
# the share of merchants OpenStreetMap has no hours for either.
HOURS: dict[Category, tuple[str, ...]] = {
    Category.cafe: ("Mo-Fr 07:00-19:00; Sa-Su 09:00-17:00", "Mo-Su 08:00-20:00"),
    Category.restaurant: ("Mo-Th 11:00-22:00; Fr-Sa 11:00-23:30; Su 12:00-21:00", "Tu-Su 17:00-23:00"),
    Category.fast_food: ("Mo-Su 10:00-22:00", "Mo-Th 10:00-23:00; Fr-Sa 10:00-04:00; Su 11:00-22:00"),
    Category.bar: ("Mo-Th 16:00-01:00; Fr-Sa 15:00-03:00", "Tu-Sa 18:00-02:00"),
    Category.bakery: ("Mo-Fr 07:00-18:00; Sa 08:00-15:00", "Mo-Sa 06:30-17:00; Su 08:00-14:00"),
    Category.grocery: ("Mo-Sa 07:00-22:00; Su 10:00-21:00", "24/7"),
    Category.fashion: (_SHOP,),
    Category.beauty: ("Tu-Fr 10:00-19:00; Sa 10:00-16:00", "Mo-Fr 09:00-18:00"),
    Category.health: ("Mo-Fr 08:00-18:00; PH off", "Mo-Fr 08:00-20:00; Sa 09:00-15:00; PH off"),
    Category.fitness: ("Mo-Fr 06:00-22:00; Sa-Su 08:00-20:00", "24/7"),
    Category.entertainment: ("Mo-Su 12:00-23:00", "We-Su 18:00-02:00"),
    Category.culture: ("Tu-Su 11:00-18:00; PH off", "We-Su 10:00-17:00"),
    Category.lodging: ("24/7",),
    Category.services: ("Mo-Fr 09:00-17:00", "Mo-Fr 09:00-18:00; Sa 10:00-14:00"),
    Category.electronics: (_SHOP,),
    Category.home: (_SHOP, "Mo-Fr 10:00-19:00; Sa 10:00-16:00"),
    Category.other: ("Mo-Fr 09:00-17:00",),
}
HOURS_UNKNOWN_SHARE = 0.1
# Categories that run time-limited deals, and the share of their merchants that have one.
DEAL_CATEGORIES = (Category.cafe, Category.restaurant, Category.bar, Category.bakery, Category.fast_food)
DEAL_SHARE = 0.3


@dataclass(frozen=True)
class SyntheticCity:
    lats: FloatArray
    lons: FloatArray
    categories: list[str]
    price_levels: IntArray  # 1 (cheap) to 4
    hours: list[str | None]  # OSM opening_hours

    def fields(self, i: int) -> MerchantFields:
        return MerchantFields(
            name=self.name(i),
            category=Category(self.categories[i]),
            lat=float(self.lats[i]),
            lon=float(self.lons[i]),
            price_level=int(self.price_levels[i]),
            opening_hours=self.hours[i],
        )

    def name(self, i: int) -> str:
        return f"{self.categories[i].replace('_', ' ').title()} #{i + 1}"


def generate_city(
    n: int, centre_lat: float = 60.1699, centre_lon: float = 24.9384, size_km: float = 60.0, seed: int = 7
) -> SyntheticCity:
    """n merchants in a size_km square: 85% around 8 Gaussian centres, 15% spread uniformly."""
    rng = np.random.default_rng(seed)
    km_lat = 1 / 110.574
    km_lon = 1 / (111.320 * math.cos(math.radians(centre_lat)))
    half = size_km / 2
    n_centres = 8
    centres = rng.uniform(-half * 0.7, half * 0.7, size=(n_centres, 2))
    spreads = rng.uniform(0.6, 3.0, size=n_centres)
    weights = rng.dirichlet(np.ones(n_centres) * 2)
    clustered = int(n * 0.85)
    which = rng.choice(n_centres, size=clustered, p=weights)
    xy = centres[which] + rng.normal(size=(clustered, 2)) * spreads[which, None]
    xy = np.concatenate([xy, rng.uniform(-half, half, size=(n - clustered, 2))])
    xy = np.clip(xy, -half, half)
    order = rng.permutation(n)
    xy = xy[order]
    names = list(_CATEGORY_SHARES)
    shares = np.array(list(_CATEGORY_SHARES.values()))
    cats = rng.choice(len(names), size=n, p=shares / shares.sum())
    variant = rng.integers(0, 2**31, size=n)
    unknown = rng.random(n) < HOURS_UNKNOWN_SHARE
    price_levels = 1 + np.minimum(rng.poisson(1.0, size=n), 3)
    hours = [
        None if unknown[i] else HOURS[names[c]][variant[i] % len(HOURS[names[c]])] for i, c in enumerate(cats)
    ]
    return SyntheticCity(
        lats=centre_lat + xy[:, 1] * km_lat,
        lons=centre_lon + xy[:, 0] * km_lon,
        categories=[names[i].value for i in cats],
        price_levels=price_levels.astype(np.int64),
        hours=hours,
    )


def seed_city(session: Session, n: int, now: datetime, seed: int = 7, batch: int = 50_000) -> int:
    """Insert a synthetic city through the merchant service, in batches (the caller commits)."""
    city = generate_city(n, seed=seed)
    written = 0
    for start in range(0, n, batch):
        written += import_merchants(
            session, [city.fields(i) for i in range(start, min(n, start + batch))], now
        )
    return written


@dataclass(frozen=True)
class SyntheticDeals:
    """One deal per chosen merchant, published; validity spread over the period and beyond."""

    merchants: IntArray  # index into the city, ascending
    list_price_minor: IntArray
    off_percent: IntArray
    quantity: IntArray  # 0: unlimited
    valid_from: FloatArray  # POSIX seconds
    valid_until: FloatArray
    window: IntArray  # index into DEAL_WINDOWS

    @property
    def deal_price_minor(self) -> IntArray:
        return self.list_price_minor * (100 - self.off_percent) // 100

    def title(self, k: int) -> str:
        return f"-{self.off_percent[k]} % {DEAL_WINDOWS[int(self.window[k])][0]}"


_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
_ALL_DAYS = [*_WEEKDAYS, "sat", "sun"]
# (how a title says it, windows in the merchant's local time)
DEAL_WINDOWS: tuple[tuple[str, list[dict[str, object]]], ...] = (
    ("all day", []),
    ("in the evening", [{"days": _ALL_DAYS, "start": "17:00", "end": "21:00"}]),
    ("at lunch on weekdays", [{"days": _WEEKDAYS, "start": "11:00", "end": "14:00"}]),
)


def generate_deals(city_categories: IntArray, now: datetime, days: int, seed: int) -> SyntheticDeals:
    """Deals at DEAL_SHARE of the merchants in DEAL_CATEGORIES (category codes given), each
    valid for 7 to 60 days starting anywhere from ``days`` before ``now`` to a week after."""
    rng = np.random.default_rng([seed, 1])
    codes = [CATEGORY_CODES[c.value] for c in DEAL_CATEGORIES]
    eligible = np.flatnonzero(np.isin(city_categories, codes))
    chosen = eligible[rng.random(len(eligible)) < DEAL_SHARE]
    n = len(chosen)
    end = now.timestamp()
    starts = rng.uniform(end - days * 86_400.0, end + 7 * 86_400.0, size=n)
    return SyntheticDeals(
        merchants=chosen.astype(np.int64),
        list_price_minor=rng.choice([800, 1200, 1500, 2200, 3500], size=n).astype(np.int64),
        off_percent=rng.choice([20, 30, 40, 50], size=n).astype(np.int64),
        quantity=np.where(rng.random(n) < 0.25, 0, rng.integers(50, 500, size=n)).astype(np.int64),
        valid_from=np.floor(starts),
        valid_until=np.floor(starts + rng.uniform(7, 60, size=n) * 86_400.0),
        window=rng.integers(0, len(DEAL_WINDOWS), size=n).astype(np.int64),
    )
