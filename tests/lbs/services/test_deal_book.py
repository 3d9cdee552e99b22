"""The deal book answers as the database queries do, and follows every deal write."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from lbs.config import Settings
from lbs.models import Deal
from lbs.services.deal_book import DealBook, micros
from lbs.services.deal_offers import best_offers, merchants_with_deals, offers_near
from lbs.services.live_index import LiveIndex
from lbs.services.merchants import MerchantChanges, update_merchant
from tests.factories import NOW, scatter, seed

# Zones far apart, so that windows fall on other days and across DST changes.
CENTRES = {"Helsinki": (60.17, 24.94), "New York": (40.75, -73.99), "Auckland": (-36.85, 174.76)}
WINDOWS = [
    [],
    [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "11:00", "end": "14:00"}],
    [{"days": ["fri", "sat"], "start": "22:00", "end": "02:00"}],
    [
        {"days": ["sun"], "start": "00:00", "end": "24:00"},
        {"days": ["mon"], "start": "00:00", "end": "03:00"},
    ],
    [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "17:00", "end": "21:00"}],
]


def random_deals(rng: random.Random, merchant_ids: Sequence[int], n: int) -> list[dict[str, Any]]:
    deals = []
    for _ in range(n):
        start = NOW + timedelta(hours=rng.uniform(-24 * 20, 24 * 5))
        total = rng.choice([None, 1, 3, 50])
        list_price = rng.choice([1000, 1500, 2000])
        deals.append(
            {
                "merchant_id": rng.choice(merchant_ids),
                "title": "deal",
                "kind": "percent_off",
                "currency": "EUR",
                "list_price_minor": list_price,
                "deal_price_minor": rng.choice([0, 500, 999, 1200]) % list_price,
                "quantity_total": total,
                "quantity_claimed": 0 if total is None else rng.randint(0, total),
                "per_user_limit": 1,
                "valid_from": start,
                "valid_until": start + timedelta(hours=rng.uniform(1, 24 * 40)),
                "windows": rng.choice(WINDOWS),
                "status": rng.choice(["published"] * 4 + ["paused", "draft", "ended"]),
                "ended_at": None,
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
    return deals


def city(engine: Engine, rng: random.Random) -> list[int]:
    rows = [
        m
        for name, (lat, lon) in CENTRES.items()
        for m in scatter(rng, lat, lon, 25, 3000.0, prefix=name, duplicate_share=0.2)
    ]
    ids = [s.id for s in seed(engine, rows)]
    with Session(engine) as session, session.begin():
        session.execute(Deal.__table__.insert(), random_deals(rng, ids, 150))
    return ids


def loaded(engine: Engine, at: datetime) -> tuple[LiveIndex, DealBook]:
    live = LiveIndex(Settings().resolutions, 0.0)
    book = DealBook(Settings().resolutions, 0.0)
    live.listeners.append(book.merchants_changed)
    with Session(engine) as session:
        live.load(session)
        book.load(session, at)
    return live, book


def instants(rng: random.Random, n: int) -> list[datetime]:
    """Random instants, and instants on the hour and at window edges (where mistakes hide)."""
    found = [NOW + timedelta(minutes=rng.randint(-60 * 24 * 3, 60 * 24 * 10)) for _ in range(n)]
    return found + [t.replace(minute=0, second=0) for t in found[: n // 2]]


def same_as_database(session: Session, book: DealBook, ids: list[int], at: datetime) -> None:
    wanted = best_offers(session, ids, at)
    got = book.offers(ids, at)
    assert got.keys() == wanted.keys()
    for merchant_id, offer in wanted.items():
        mine = got[merchant_id]
        assert (mine.now and mine.now.deal.id) == (offer.now and offer.now.deal.id), (merchant_id, at)
        assert (mine.next and mine.next.deal.id) == (offer.next and offer.next.deal.id), (merchant_id, at)
        if offer.now is not None:
            assert mine.now is not None and mine.now.ends_at == offer.now.ends_at

    best = book.best_claimable(ids, at)
    claimable = {m: o.now for m, o in wanted.items() if o.now is not None}
    assert [ids[p] for p in best.positions.tolist()] == [m for m in ids if m in claimable]
    assert best.ends_us.tolist() == [
        micros(claimable[m].ends_at or claimable[m].deal.valid_until) for m in ids if m in claimable
    ]
    assert np.allclose(best.discount, [claimable[m].discount for m in ids if m in claimable])

    assert set(book.merchants_with_deals(at, started=True).tolist()) == set(
        merchants_with_deals(session, at, ids, started=True)
    ) & set(ids)

    for lat, lon in CENTRES.values():
        near = sorted(offers_near(session, lat, lon, 2500.0, at), key=lambda n: (n.chord2, n.merchant_id))
        found = book.claimable_near(lat, lon, 2500.0, at, None)
        assert found.merchant_ids.tolist() == [n.merchant_id for n in near], at
        assert found.ends_us.tolist() == [micros(n.offer.ends_at or n.offer.deal.valid_until) for n in near]
        assert np.allclose(found.chord2, [n.chord2 for n in near], rtol=0, atol=1e-15)


@pytest.mark.parametrize("rng_seed", [1, 2])
def test_the_book_answers_as_the_database_does(engine: Engine, rng_seed: int) -> None:
    rng = random.Random(rng_seed)
    ids = city(engine, rng)
    _, book = loaded(engine, NOW - timedelta(days=3))
    assert book.size > 0
    with Session(engine) as session:
        for at in instants(rng, 30):
            same_as_database(session, book, ids, at)


def test_the_book_follows_claims_edits_new_deals_and_merchant_closures(engine: Engine) -> None:
    rng = random.Random(3)
    ids = city(engine, rng)
    live, book = loaded(engine, NOW)
    at = NOW + timedelta(hours=1)
    with Session(engine) as session, session.begin():
        deal_ids = list(session.scalars(select(Deal.id).where(Deal.status == "published")))
        sold_out = func.coalesce(Deal.quantity_total, Deal.quantity_claimed + 1)
        for deal_id in rng.sample(deal_ids, 20):  # claims, as the claim path writes them
            session.execute(update(Deal).where(Deal.id == deal_id).values(quantity_claimed=sold_out))
        for deal_id in rng.sample(deal_ids, 10):
            session.execute(update(Deal).where(Deal.id == deal_id).values(status="paused"))
        session.execute(Deal.__table__.insert(), random_deals(rng, ids, 30))
        update_merchant(session, ids[0], MerchantChanges(status="closed"), at, by_operator=True)
        update_merchant(session, ids[1], MerchantChanges(lat=-36.86, lon=174.75), at, by_operator=True)

    with Session(engine) as session:
        live.refresh_if_due(session)
        book.refresh_if_due(session)
        for instant in [at, *(t for t in instants(rng, 10) if book.covers(t))]:
            same_as_database(session, book, ids, instant)


@pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgis)])
def test_a_write_committed_after_a_later_one_is_not_missed(engine: Engine) -> None:
    """PostgreSQL numbers writes (transaction ids) in start order but commits them in any
    order: the poll's horizon must still catch a write committed after a newer one was seen.
    (SQLite has one writer at a time: there, commit order is revision order.)"""
    city(engine, random.Random(4))
    _, book = loaded(engine, NOW)
    with Session(engine) as session:
        held = select(Deal.id).where(Deal.status == "published", Deal.valid_until > NOW)
        first, second = session.scalars(held.limit(2))
    with Session(engine) as slow, Session(engine) as fast:
        slow.execute(update(Deal).where(Deal.id == first).values(title="slow"))  # the older id
        fast.execute(update(Deal).where(Deal.id == second).values(title="fast"))
        fast.commit()
        with Session(engine) as session:
            book.refresh_if_due(session)
        assert (title(book, first), title(book, second)) == ("deal", "fast")
        slow.commit()
    with Session(engine) as session:
        book.refresh_if_due(session)
    assert title(book, first) == "slow"


def title(book: DealBook, deal_id: int) -> str:
    deal = book.deal(deal_id)
    assert deal is not None
    return deal.title


def test_instants_before_the_floor_are_not_covered(engine: Engine) -> None:
    city(engine, random.Random(5))
    _, book = loaded(engine, NOW)
    assert book.covers(NOW) and not book.covers(book.floor) and not book.covers(NOW - timedelta(days=2))
    assert book.floor == NOW - timedelta(days=1)
