"""The demo city: Helsinki's real merchants, synthetic people who visit them, deals, a model.

Each step runs only when its data is missing, so a second run starts at once:

1. merchants: the OpenStreetMap extract (`seed.osm`) when it is beside the clone, else
   the synthetic city (`seed.synthetic`);
2. people: users with a home near a random merchant, a hidden taste for some categories
   and three favourite places; their visits over the last weeks go to favourites mostly,
   otherwise to places they like by category and distance (deterministic for a seed);
3. deals: a share of the cafés, restaurants, bars and bakeries run a published deal,
   some all day, some in an evening window;
4. a ranking model trained on those visits (`lbs train`'s code), unless one exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES, Category
from lbs.geo.distance import chord2_to, chord2_to_m, latlng_to_xyz, point_to_xyz
from lbs.models import Deal, Event, Merchant
from lbs.services.deal_schedule import DAYS
from lbs.services.deals import DealFields, DealWindow, create_deal
from lbs.services.events import record_events
from lbs.services.merchants import upsert_by_source_ref
from lbs.services.users import create_user
from seed import osm
from seed.synthetic import seed_city

HELSINKI_OSM = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm-helsinki" / "Helsinki.osm.pbf"
DEAL_CATEGORIES = (Category.cafe, Category.restaurant, Category.bar, Category.bakery, Category.fast_food)

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoParams:
    users: int = 2000
    visits_per_user: int = 40
    days: int = 60
    neighbourhood_m: float = 1500.0
    favourite_share: float = 0.6  # of visits that go to one of the user's three favourites
    deal_share: float = 0.15  # of cafés, restaurants, bars, bakeries and fast food
    seed: int = 7


def _count(session: Session, model: type) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def merchants(session: Session, now: datetime, osm_path: Path | None, say: Say) -> None:
    if _count(session, Merchant):
        say("merchants: already there")
        return
    if osm_path is not None and osm_path.is_file():
        found = osm.read(osm_path)
        done = upsert_by_source_ref(session, list(found.rows.items()), now)
        say(f"merchants: {done.inserted} from {osm_path.name} ({osm.ATTRIBUTION})")
    else:
        say(f"merchants: {seed_city(session, 5000, now)} synthetic ({osm_path} is not there)")


def visits(session: Session, now: datetime, params: DemoParams, say: Say) -> None:
    if _count(session, Event):
        say("visits: already there")
        return
    rows = session.execute(
        select(Merchant.id, Merchant.lat, Merchant.lon, Merchant.category).where(Merchant.status == "active")
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    lats, lons = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    xyz = latlng_to_xyz(lats, lons)
    cats = np.array([CATEGORY_CODES[r[3]] for r in rows], dtype=np.int64)
    rng = np.random.default_rng(params.seed)
    start = now - timedelta(days=params.days)
    events = []
    for _ in range(params.users):
        user_id, _token = create_user(session, start)
        home = int(rng.integers(len(ids)))
        metres = chord2_to_m(chord2_to(xyz, point_to_xyz(lats[home], lons[home])))
        near = np.flatnonzero(metres <= params.neighbourhood_m)
        taste = rng.dirichlet(np.full(len(Category), 0.5))
        weight = taste[cats[near]] * np.exp(-metres[near] / 500.0)
        weight /= weight.sum()
        favourites = rng.choice(near, size=min(3, len(near)), replace=False, p=weight)
        places = np.where(
            rng.random(params.visits_per_user) < params.favourite_share,
            rng.choice(favourites, size=params.visits_per_user),
            rng.choice(near, size=params.visits_per_user, p=weight),
        )
        # Days spread over the window, at a waking hour (08:00 to 22:00 UTC+2 or so).
        offsets = np.sort(rng.uniform(0, params.days, params.visits_per_user))
        hours = rng.uniform(6, 20, params.visits_per_user)
        for place, day, hour in zip(places.tolist(), offsets.tolist(), hours.tolist(), strict=True):
            at = start + timedelta(days=math.floor(day), hours=hour)
            events.append(
                {
                    "kind": "visit",
                    "source": "client",
                    "user_id": user_id,
                    "merchant_id": int(ids[place]),
                    "occurred_at": at,
                    "received_at": at,
                }
            )
    record_events(session, events)
    say(f"visits: {len(events):,} by {params.users:,} synthetic users over {params.days} days")


def deals(session: Session, now: datetime, params: DemoParams, say: Say) -> None:
    if _count(session, Deal):
        say("deals: already there")
        return
    wanted = [c.value for c in DEAL_CATEGORIES]
    ids = (
        session.execute(select(Merchant.id).where(Merchant.category.in_(wanted)).order_by(Merchant.id))
        .scalars()
        .all()
    )
    rng = np.random.default_rng(params.seed + 1)
    chosen = [int(i) for i in ids if rng.random() < params.deal_share]
    for k, merchant_id in enumerate(chosen):
        list_price = int(rng.choice([800, 1200, 1500, 2200, 3500]))
        off = int(rng.choice([20, 30, 40, 50]))
        evening = k % 2 == 1
        fields = DealFields(
            title=f"-{off} %" + (" in the evening" if evening else " all day"),
            kind="percent_off",
            currency="EUR",
            list_price_minor=list_price,
            deal_price_minor=list_price * (100 - off) // 100,
            quantity_total=int(rng.integers(20, 200)),
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=int(rng.integers(7, 60))),
            windows=[DealWindow(days=list(DAYS), start="17:00", end="21:00")] if evening else [],
            publish=True,
        )
        create_deal(session, merchant_id, fields, now)
    say(f"deals: {len(chosen)} published")
