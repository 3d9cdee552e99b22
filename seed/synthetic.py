"""A synthetic city for scale: clustered merchants around a few dense centres (seeded RNG)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from lbs.categories import Category
from lbs.services.merchants import MerchantFields, import_merchants

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


@dataclass(frozen=True)
class SyntheticCity:
    lats: npt.NDArray[np.float64]
    lons: npt.NDArray[np.float64]
    categories: list[str]


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
    return SyntheticCity(
        lats=centre_lat + xy[:, 1] * km_lat,
        lons=centre_lon + xy[:, 0] * km_lon,
        categories=[names[i].value for i in cats],
    )


def seed_city(session: Session, n: int, now: datetime, seed: int = 7, batch: int = 50_000) -> int:
    """Insert a synthetic city through the merchant service, in batches (the caller commits)."""
    city = generate_city(n, seed=seed)
    written = 0
    for start in range(0, n, batch):
        rows = [
            MerchantFields(
                name=f"{city.categories[i].replace('_', ' ').title()} #{i + 1}",
                category=Category(city.categories[i]),
                lat=float(city.lats[i]),
                lon=float(city.lons[i]),
                price_level=1 + i % 4,
            )
            for i in range(start, min(n, start + batch))
        ]
        written += import_merchants(session, rows, now)
    return written
