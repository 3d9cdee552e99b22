"""The demo city: Helsinki's real merchants, synthetic people around them, a model.

Each step runs only when its data is missing, so a second run starts at once:

1. merchants: the OpenStreetMap extract (`seed.osm`) when it is beside the clone, else
   the synthetic city (`seed.synthetic`);
2. people: deals at a share of the cafés, restaurants, bars, bakeries and fast food, and
   people with homes, workplaces and hidden tastes who see, click, claim, redeem, visit
   and review some of their redemptions over the last weeks (`seed.people`, deterministic
   for a seed), bulk-written, with the reviewed merchants' ratings;
3. deals to try a claim with at any hour: all day, every day, for a year, at the cafés
   and restaurants nearest the centre, made again once fewer than TRY_DEALS_MIN_DAYS are
   left (the people's deals have windows and end; these make the README's tour work
   whenever the demo runs); where the server takes payments (LBS_PAYMENT_PROVIDER), deals
   to pay ahead for, alike, at the next nearest (docs/payments.md);
4. a ranking model trained on what they did (`lbs train`'s code), unless one exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES
from lbs.geo.distance import great_circle_m
from lbs.models import Deal, Event, Merchant
from lbs.services.deals import DealFields, create_deal
from lbs.services.merchants import upsert_by_source_ref
from seed import loader, osm
from seed.people import generate
from seed.synthetic import generate_deals, seed_city

HELSINKI_OSM = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm-helsinki" / "Helsinki.osm.pbf"

Say = Callable[[str], None]

CENTRE = (60.1699, 24.9384)  # Helsinki's Central Railway Station square, lat, lon
TRY_DEALS = 5
TRY_DEALS_TITLE = "Try me: -50 % all day"
TRY_DEALS_MIN_DAYS = 30
PAY_AHEAD_TITLE = "Pay ahead: lunch -40 %"


@dataclass(frozen=True)
class DemoParams:
    users: int = 2000
    days: int = 60
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


def people(session: Session, now: datetime, params: DemoParams, secret_key: bytes, say: Say) -> None:
    if _count(session, Event):
        say("people: already there")
        return
    rows = session.execute(
        select(Merchant.id, Merchant.lat, Merchant.lon, Merchant.category)
        .where(Merchant.status == "active")
        .order_by(Merchant.id)
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    lats, lons = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    categories = np.array([CATEGORY_CODES[r[3]] for r in rows], dtype=np.int64)
    until = now.replace(hour=0, minute=0, second=0, microsecond=0)
    deals = generate_deals(categories, until, params.days, params.seed)
    behaviour = generate(lats, lons, categories, deals, params.users, params.days, until, params.seed)
    loader.write_people(
        session, f"demo:{params.seed}/u", ids, deals, behaviour, until, secret_key, lambda _: None
    )
    say(
        f"people: {params.users:,} with {len(behaviour.events):,} events over {params.days} days, "
        f"{len(deals.merchants)} deals, {len(behaviour.claims.person)} vouchers, "
        f"{len(behaviour.reviews)} reviews"
    )


def _nearest_cafes(session: Session, skip: int = 0) -> list[int]:
    """TRY_DEALS cafés and restaurants nearest the centre, nearest first, after ``skip``."""
    rows = session.execute(
        select(Merchant.id, Merchant.lat, Merchant.lon).where(
            Merchant.status == "active", Merchant.category.in_(("cafe", "restaurant"))
        )
    ).all()
    nearest = sorted(rows, key=lambda r: (great_circle_m(CENTRE[0], CENTRE[1], r.lat, r.lon), r.id))
    return [r.id for r in nearest[skip : skip + TRY_DEALS]]


def _live(session: Session, title: str, now: datetime) -> bool:
    """Whether deals of this title run for TRY_DEALS_MIN_DAYS more at least."""
    count = session.execute(
        select(func.count()).select_from(Deal).where(
            Deal.title == title, Deal.status == "published",
            Deal.valid_until > now + timedelta(days=TRY_DEALS_MIN_DAYS),
        )
    ).scalar_one()  # fmt: skip
    return bool(count)


def try_deals(session: Session, now: datetime, say: Say) -> None:
    if _live(session, TRY_DEALS_TITLE, now):
        say("deals to try: already there")
        return
    nearest = _nearest_cafes(session)
    start = now.replace(microsecond=0)
    fields = DealFields(
        title=TRY_DEALS_TITLE, kind="percent_off", currency="EUR",
        list_price_minor=1000, deal_price_minor=500, quantity_total=1_000_000, per_user_limit=1,
        valid_from=start, valid_until=start + timedelta(days=365), payment="at_counter", publish=True,
    )  # fmt: skip
    for merchant_id in nearest:
        create_deal(session, merchant_id, fields, now, takes_payments=False)
    ids = ", ".join(map(str, nearest))
    say(f"deals to try: {len(nearest)} all day for a year, at merchants {ids}")


def pay_ahead_deals(session: Session, now: datetime, say: Say) -> None:
    """Prepaid deals for a server that takes payments: paid online at the deal price,
    refundable while unused, all day for a year. At the cafés and restaurants next nearest
    after the deals to try, not at theirs: a page shows each merchant's best deal, and there
    the free -50 % would hide them."""
    if _live(session, PAY_AHEAD_TITLE, now):
        say("deals to pay ahead: already there")
        return
    nearest = _nearest_cafes(session, skip=TRY_DEALS)
    start = now.replace(microsecond=0)
    fields = DealFields(
        title=PAY_AHEAD_TITLE, kind="percent_off", currency="EUR",
        list_price_minor=1500, deal_price_minor=900, quantity_total=1_000_000, per_user_limit=2,
        valid_from=start, valid_until=start + timedelta(days=365), payment="prepaid",
        refund_policy="anytime", publish=True,
    )  # fmt: skip
    for merchant_id in nearest:
        create_deal(session, merchant_id, fields, now, takes_payments=True)
    ids = ", ".join(map(str, nearest))
    say(f"deals to pay ahead: {len(nearest)} all day for a year, refundable while unused, at merchants {ids}")
