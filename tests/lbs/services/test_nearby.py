"""The live index follows the merchant change log: within refresh_s, and without missing a write."""

from __future__ import annotations

import random
import threading

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from lbs.config import Settings
from lbs.models import Merchant
from lbs.services.deal_book import DealBook
from lbs.services.live_index import LiveIndex
from lbs.services.merchants import MerchantChanges, create_merchant, import_merchants, update_merchant
from lbs.services.nearby import search_nearby
from lbs.services.nearby_pages import NearbyQuery
from tests.factories import NOW, merchant, points_of, scatter, seed
from tests.oracle import Points, assert_nearby_exact, destination

CENTRE = (47.3769, 8.5417)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def nearby_ids(
    engine: Engine, live: LiveIndex, radius_m: float = 10_000.0, lat_lon: tuple[float, float] = CENTRE
) -> list[int]:
    with Session(engine) as session:
        page = search_nearby(
            session,
            live,
            no_deals(),
            NearbyQuery(lat=lat_lon[0], lon=lat_lon[1], radius_m=radius_m, limit=100, at=NOW),
        )
    return [item.merchant["id"] for item in page.items]


def no_deals() -> DealBook:
    return DealBook(Settings().resolutions, refresh_s=0.0)


def loaded(engine: Engine, refresh_s: float, clock: FakeClock | None = None) -> LiveIndex:
    live = LiveIndex(Settings().resolutions, refresh_s, **({"clock": clock} if clock else {}))
    with Session(engine) as session:
        live.load(session)
    return live


def test_another_workers_writes_show_once_refresh_s_has_passed(engine: Engine) -> None:
    (moving, pausing) = seed(engine, [merchant("moving", *CENTRE), merchant("pausing", *CENTRE)])
    clock = FakeClock()
    live = loaded(engine, refresh_s=2.0, clock=clock)
    assert nearby_ids(engine, live, 10.0) == [moving.id, pausing.id]

    with Session(engine) as session, session.begin():
        update_merchant(session, moving.id, MerchantChanges(lat=CENTRE[0] + 0.01), NOW, by_operator=True)
        update_merchant(session, pausing.id, MerchantChanges(status="inactive"), NOW, by_operator=True)
        import_merchants(session, [merchant("new", *CENTRE)], NOW)
    clock.now += 2.0

    with Session(engine) as session:
        new_id = session.execute(select(Merchant.id).where(Merchant.name == "new")).scalar_one()
    assert nearby_ids(engine, live, 10.0) == [new_id]
    assert moving.id in nearby_ids(engine, live, 10.0, (CENTRE[0] + 0.01, CENTRE[1]))
    assert live.size == 2


def test_a_merchant_created_after_load_is_found(engine: Engine) -> None:
    live = loaded(engine, refresh_s=0.0)

    with Session(engine) as session, session.begin():
        created_id = create_merchant(session, merchant("late", *CENTRE), NOW).id

    assert nearby_ids(engine, live) == [created_id]


def test_concurrent_writers_never_leave_the_index_behind(engine: Engine) -> None:
    """Writers in several threads, a poller refreshing all along: the index ends equal to the database."""
    seeded = seed(engine, scatter(random.Random(1), *CENTRE, 200, 4000.0))
    ids = [s.id for s in seeded]
    live = loaded(engine, refresh_s=0.0)
    done = threading.Event()
    errors: list[BaseException] = []

    def write(seed_value: int) -> None:
        rng = random.Random(seed_value)
        try:
            for _ in range(20):
                lat, lon = destination(*CENTRE, rng.uniform(0, 360), rng.uniform(0, 4000))
                changes = MerchantChanges(
                    lat=lat, lon=lon, status=rng.choice(["active", "active", "inactive"])
                )
                with Session(engine) as session, session.begin():
                    update_merchant(session, rng.choice(ids), changes, NOW, by_operator=True)
        except BaseException as exc:
            errors.append(exc)

    def poll() -> None:
        try:
            while not done.is_set():
                with Session(engine) as session:
                    live.refresh_if_due(session)
        except BaseException as exc:
            errors.append(exc)

    poller = threading.Thread(target=poll)
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    poller.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    done.set()
    poller.join(timeout=120)
    assert not errors, errors

    with Session(engine) as session:
        rows = session.execute(select(Merchant.id, Merchant.lat, Merchant.lon, Merchant.status)).all()
        live.refresh_if_due(session)
    points = Points.of(
        [r.id for r in rows],
        [r.lat for r in rows],
        [r.lon for r in rows],
        [r.status == "active" for r in rows],
    )
    found = live.query(*CENTRE, 10_000.0, limit=1000)
    assert_nearby_exact(
        points, *CENTRE, 10_000.0, [h.id for h in found.hits], found.total, [h.distance_m for h in found.hits]
    )


def test_search_matches_the_oracle_with_a_category_filter(engine: Engine) -> None:
    seeded = seed(engine, scatter(random.Random(2), *CENTRE, 300, 2000.0))
    live = loaded(engine, refresh_s=0.0)

    with Session(engine) as session:
        page = search_nearby(
            session,
            live,
            no_deals(),
            NearbyQuery(
                lat=CENTRE[0], lon=CENTRE[1], radius_m=1500.0, limit=100, at=NOW, categories=("cafe", "bar")
            ),
        )

    ids = [i.merchant["id"] for i in page.items]
    assert_nearby_exact(
        points_of(seeded, ["cafe", "bar"]),
        *CENTRE,
        1500.0,
        ids,
        page.total,
        [i.distance_m for i in page.items],
        0.005 + 1e-6,
    )
