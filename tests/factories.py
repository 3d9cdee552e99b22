"""Test data: merchant rows written through the merchant service, and their oracle view."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from lbs.categories import Category
from lbs.models import Merchant
from lbs.services.database_identity import database_id
from lbs.services.merchants import MerchantFields, import_merchants
from recommender import training
from recommender.model import Model
from recommender.ranker import RankerParams
from recommender.synthetic import Town, town
from tests.oracle import Points, destination

CATEGORIES = [c.value for c in Category]
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seeded:
    """A merchant as written, with the id the database gave it."""

    id: int
    name: str
    lat: float
    lon: float
    category: str
    status: str


def merchant(
    name: str, lat: float, lon: float, category: str = "cafe", status: str = "active"
) -> MerchantFields:
    return MerchantFields(name=name, category=Category(category), lat=lat, lon=lon, status=status)


def seed(engine: Engine, rows: Sequence[MerchantFields]) -> list[Seeded]:
    """Insert rows (unique names) with import_merchants in one transaction; return them with ids."""
    names = [r.name for r in rows]
    assert len(set(names)) == len(names), "seed rows need unique names"
    with Session(engine) as session, session.begin():
        import_merchants(session, rows, NOW)
    with Session(engine) as session:
        id_of = {
            name: merchant_id for name, merchant_id in session.execute(select(Merchant.name, Merchant.id))
        }
    return [Seeded(id_of[r.name], r.name, r.lat, r.lon, r.category.value, r.status) for r in rows]


def seed_town(engine: Engine, world: Town) -> dict[int, int]:
    """A synthetic town's items as merchants (cafés, names m<item id>): item id -> merchant id."""
    rows = [
        merchant(f"m{i}", float(lat), float(lon))
        for i, lat, lon in zip(world.item_ids, world.lats, world.lons, strict=True)
    ]
    return {int(i): s.id for i, s in zip(world.item_ids, seed(engine, rows), strict=True)}


def this_database(engine: Engine) -> str:
    with Session(engine) as session:
        return database_id(session)


def town_trainer(engine: Engine) -> tuple[Callable[[str], Model], str]:
    """A small synthetic town seeded as merchants; a function training a quick model of its
    visits bound to a given database id, and a nearby path in the town."""
    world = town(users=40, visits_per_user=30)
    id_of = seed_town(engine, world)
    item_of = {merchant_id: item for item, merchant_id in id_of.items()}
    items = [id_of[int(i)] for i in world.items]
    data = training.Interactions.visits_only(world.users, items, world.times)

    def candidates(item: int) -> tuple[list[int], Any]:
        ids, distances = world.candidates_of(3000)(item_of[item])
        return [id_of[int(i)] for i in ids], distances

    def train(bound_to: str) -> Model:
        model = training.train(data, candidates, training.TrainParams(ranker=RankerParams(rounds=20)))
        model.meta["database_id"] = bound_to
        return model

    return train, f"/v1/nearby?lat={world.lats[0]}&lon={world.lons[0]}&radius_m=3000"


def scatter(
    rng: random.Random,
    lat: float,
    lon: float,
    n: int,
    max_distance_m: float,
    prefix: str = "m",
    inactive_share: float = 0.1,
    duplicate_share: float = 0.1,
) -> list[MerchantFields]:
    """n merchants around a point; some share a position, some are inactive or closed."""
    rows: list[MerchantFields] = []
    for i in range(n):
        if rows and rng.random() < duplicate_share:
            twin = rng.choice(rows)
            plat, plon = twin.lat, twin.lon
        else:
            plat, plon = destination(lat, lon, rng.uniform(0, 360), max_distance_m * rng.random() ** 0.5)
        status = rng.choice(["inactive", "closed"]) if rng.random() < inactive_share else "active"
        rows.append(merchant(f"{prefix}{i}", plat, plon, rng.choice(CATEGORIES), status))
    return rows


def points_of(seeded: Sequence[Seeded], categories: Sequence[str] | None = None) -> Points:
    """The oracle's view: only active merchants (of the given categories) are eligible."""
    return Points.of(
        [s.id for s in seeded],
        [s.lat for s in seeded],
        [s.lon for s in seeded],
        [s.status == "active" and (categories is None or s.category in categories) for s in seeded],
    )


def count_merchants(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Merchant)).scalar_one())
