"""`lbs train` reads the event log, the merchants and the reviews in bulk: exactly the rows
the window, kinds and statuses select, in the log's order, with the times
datetime.timestamp() gives; the reviews rate the merchants in the model it trains."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES
from lbs.column_reads import ColumnReadError, read_columns
from lbs.models import Event
from lbs.services.events import record_events, server_event
from lbs.training import read_categories, read_interactions, read_merchants, read_reviews
from tests.deals_factory import make_user
from tests.factories import merchant, seed
from tests.reviews_support import GENEROUS, move_review, reviewed, shop

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 30, tzinfo=UTC)
KINDS = ("visit", "redemption", "claim", "click")


def test_interactions_are_the_window_s_events_of_those_kinds_in_log_order(engine: Engine) -> None:
    at = SINCE + timedelta(days=3, microseconds=123_457)
    rows = [
        server_event("visit", at, user_id=2, merchant_id=30),
        server_event("impression", at, user_id=2, merchant_id=31),  # a kind not asked for
        server_event("click", UNTIL - timedelta(microseconds=1), user_id=1, merchant_id=31),
        server_event("visit", UNTIL, user_id=1, merchant_id=30),  # the window's end is excluded
        server_event("visit", SINCE, user_id=3, merchant_id=32),  # its start is included
        server_event("visit", SINCE - timedelta(seconds=1), user_id=3, merchant_id=32),
        server_event("claim", at, user_id=None, merchant_id=30),  # no user
        server_event("redemption", at, user_id=4, merchant_id=None),  # no merchant
        server_event("redemption", at + timedelta(hours=1), user_id=4, merchant_id=33),
    ]
    with Session(engine) as session, session.begin():
        record_events(session, rows)

    with Session(engine) as session:
        got = read_interactions(session, SINCE, UNTIL, KINDS)
        stored = session.execute(select(Event.occurred_at).order_by(Event.id)).scalars().all()

    assert got.users.tolist() == [2, 1, 3, 4]
    assert got.items.tolist() == [30, 31, 32, 33]
    assert got.kinds.tolist() == ["visit", "click", "visit", "redemption"]
    want = [stored[i].timestamp() for i in (0, 2, 4, 8)]
    assert got.times.tolist() == want and got.times.dtype == np.float64
    assert got.users.dtype == got.items.dtype == np.int64


def test_no_events_read_as_empty_arrays(engine: Engine) -> None:
    with Session(engine) as session:
        got = read_interactions(session, SINCE, UNTIL, KINDS)
    assert len(got) == 0 and got.times.dtype == np.float64


def test_merchants_are_the_active_ones_with_their_exact_positions(engine: Engine) -> None:
    seeded = seed(
        engine,
        [
            merchant("a", 60.1699123456789, 24.9384987654321),
            merchant("b", -33.8688, 151.2093, status="closed"),
            merchant("c", 89.9999999, -179.9999999),
        ],
    )
    with Session(engine) as session:
        venues = read_merchants(session)
    active = [s for s in seeded if s.status == "active"]
    assert sorted(venues.ids.tolist()) == sorted(s.id for s in active)
    by_id = {s.id: s for s in active}
    for i, lat, lon in zip(venues.ids.tolist(), venues.lats.tolist(), venues.lons.tolist(), strict=True):
        assert (lat, lon) == (by_id[i].lat, by_id[i].lon)


def test_a_null_in_a_column_read_in_bulk_is_refused(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        record_events(session, [server_event("visit", SINCE, user_id=None, merchant_id=1)])
    with Session(engine) as session, pytest.raises(ColumnReadError):
        read_columns(session, select(Event.user_id), ("int64",))


def test_events_far_apart_in_id_come_back_whole_and_in_id_order(engine: Engine) -> None:
    """PostgreSQL sends the columns as arrays cut by id: rows of several cuts, all there."""
    at = SINCE + timedelta(days=1)
    ids = [9_000_003, 5, 4_000_001, 12_500_000, 4_000_002]
    rows = [{**server_event("visit", at, user_id=i % 97, merchant_id=i % 89), "id": i} for i in ids]
    with Session(engine) as session, session.begin():
        record_events(session, rows)

    with Session(engine) as session:
        got = read_interactions(session, SINCE, UNTIL, KINDS)

    assert got.users.tolist() == [i % 97 for i in sorted(ids)]
    assert got.items.tolist() == [i % 89 for i in sorted(ids)]


def test_reviews_are_those_written_before_the_end_with_their_merchants_categories(
    make_app: Callable[..., OpenAPI], engine: Engine
) -> None:
    client = make_app(**GENEROUS).test_client()
    cafe, cafe_key, cafe_deal = shop(client, category="cafe")
    bar, bar_key, bar_deal = shop(client, category="bar")
    _, token = make_user(client)
    written = [
        (reviewed(client, cafe_key, token, cafe_deal, 5), UNTIL - timedelta(days=2)),
        (reviewed(client, cafe_key, token, cafe_deal, 3), UNTIL - timedelta(microseconds=1)),
        (reviewed(client, bar_key, token, bar_deal, 2), UNTIL - timedelta(days=1)),
        (reviewed(client, bar_key, token, bar_deal, 4), UNTIL),  # the end is excluded
    ]
    for review, at in written:
        move_review(engine, int(review["id"]), at)

    with Session(engine) as session:
        got = read_reviews(session, UNTIL)
        categories = read_categories(session)

    by_time = np.argsort(got.times)
    assert got.items[by_time].tolist() == [cafe, bar, cafe]
    assert got.ratings[by_time].tolist() == [5.0, 2.0, 3.0]
    assert got.times[by_time].tolist() == sorted(at.timestamp() for _, at in written[:3])
    assert categories.of(np.array([bar, cafe, 10**9])).tolist() == [
        CATEGORY_CODES["bar"],
        CATEGORY_CODES["cafe"],
        -1,
    ]
