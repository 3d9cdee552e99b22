"""The data of benchmarks/insights.py: a Helsinki merchant's 90 days of events, generated and loaded by COPY.

One merchant with 5 deals and about ``target`` events over the 90 local days to today:
impressions from ~3,400 of 20,000 users a day (a few regulars, many occasional; 1-6 a
user-day, mostly in the user's habitual hour; 70 % on nearby at the user's usual cell, 30 %
on the map), 5 % of them clicked (the deal's page, or the merchant's for impressions without
a deal), 10 % of deal clicks claimed, 70 % of claims redeemed within two days (vouchers at
the deal's price), and 300 visits a day; plus events of 40 other merchants. In time order, as
the log would hold them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import h3
import numpy as np
import psycopg
from scratch_database import libpq_url
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from lbs.models import Deal, Merchant
from lbs.services.api_keys import issue_api_key
from lbs.services.deals import DealFields, create_deal
from lbs.services.merchants import MerchantFields, create_merchant

TZ = ZoneInfo("Europe/Helsinki")
CENTRE = (60.1699, 24.9384)
DAYS = 90
POOL = 20_000
VISITS_A_DAY = 300
EVENTS_A_USER_DAY = 3.13  # measured: impressions (1 + Poisson(2), at most 6) and what follows them
DEAL_PRICES = [(1500, 900), (1200, 800), (2000, 1500), (900, 600), (3000, 2000)]
DEAL_SHARE = [0.27, 0.22, 0.18, 0.13, 0.1]  # the rest: shown without a deal
LUNCHES = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "11:00", "end": "14:00"}]
HOUR_WEIGHT = np.array(
    [1, 1, 1, 1, 1, 2, 4, 8, 10, 9, 8, 12, 16, 14, 9, 8, 10, 14, 16, 14, 10, 6, 3, 2], float
)
COPIED = (
    "id", "kind", "source", "user_id", "merchant_id", "deal_id", "voucher_id", "h3_cell",
    "occurred_at", "received_at", "surface",
)  # fmt: skip


def cells_near(rng: np.random.Generator, count: int, spread_deg: float) -> list[int]:
    lats = CENTRE[0] + rng.normal(0, spread_deg / 2, count)
    lons = CENTRE[1] + rng.normal(0, spread_deg, count)
    return [int(h3.str_to_int(h3.latlng_to_cell(a, o, 9))) for a, o in zip(lats, lons, strict=True)]


def generate(
    rng: np.random.Generator, merchant: int, deals: list[int], others: list[int], now: datetime, target: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(events without ids, vouchers) of the merchant and the others, events in time order."""
    today = now.astimezone(TZ).date()
    home = np.array(cells_near(rng, POOL, 0.05), dtype=np.int64)
    habit = rng.choice(24, size=POOL, p=HOUR_WEIGHT / HOUR_WEIGHT.sum())
    popularity = 1.0 / np.arange(1, POOL + 1) ** 0.6
    popularity /= popularity.sum()
    events: list[tuple[Any, ...]] = []
    vouchers: list[tuple[Any, ...]] = []
    prices = dict(zip(deals, DEAL_PRICES, strict=True))
    share = np.array([*DEAL_SHARE, 1 - sum(DEAL_SHARE)])
    daily = round((target / DAYS - VISITS_A_DAY) / EVENTS_A_USER_DAY)
    for back in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=back)
        midnight = datetime(day.year, day.month, day.day, tzinfo=TZ)
        users = rng.choice(POOL, size=daily, replace=False, p=popularity) + 1
        shown = 1 + rng.poisson(2.0, daily).clip(0, 5)
        user = np.repeat(users, shown)
        n = len(user)
        hour = np.where(
            rng.random(n) < 0.75, habit[user - 1], rng.choice(24, n, p=HOUR_WEIGHT / HOUR_WEIGHT.sum())
        )
        second = hour * 3600 + rng.integers(0, 3600, n)
        pick = rng.choice(len(share), n, p=share)
        on_map = rng.random(n) < 0.3
        for u, s, p, m in zip(user.tolist(), second.tolist(), pick.tolist(), on_map.tolist(), strict=True):
            at = (midnight + timedelta(seconds=s)).astimezone(UTC)
            if at > now:
                continue
            deal = deals[p] if p < len(deals) else None
            cell = None if m else int(home[u - 1])
            events.append(("impression", u, merchant, deal, None, cell, at, "map" if m else "nearby"))
            if rng.random() >= 0.05:
                continue
            clicked = at + timedelta(minutes=int(rng.integers(1, 10)))
            if clicked > now:
                continue
            events.append(
                ("click", u, merchant, deal, None, None, clicked, "deal_page" if deal else "merchant_page")
            )
            if deal is None or rng.random() >= 0.10:
                continue
            claimed = clicked + timedelta(minutes=int(rng.integers(1, 5)))
            if claimed > now:
                continue
            voucher = len(vouchers) + 1
            redeemed = claimed + timedelta(minutes=int(rng.integers(10, 48 * 60)))
            redeemed_at = redeemed if rng.random() < 0.7 and redeemed <= now else None
            vouchers.append((voucher, deal, merchant, u, prices[deal][1], claimed, redeemed_at))
            events.append(("claim", u, merchant, deal, voucher, None, claimed, None))
            if redeemed_at is not None:
                events.append(("redemption", u, merchant, deal, voucher, None, redeemed_at, None))
    visits = VISITS_A_DAY * DAYS
    start = now - timedelta(days=DAYS)
    for u, s in zip(
        rng.choice(POOL, visits, p=popularity).tolist(), rng.random(visits).tolist(), strict=True
    ):
        events.append(("visit", u + 1, merchant, None, None, None, start + (now - start) * s, None))
    return events, vouchers


def other_events(
    rng: np.random.Generator, others: list[int], now: datetime, count: int
) -> list[tuple[Any, ...]]:
    cells = cells_near(rng, 200, 0.1)
    out = []
    for _ in range(count):
        at = now - timedelta(seconds=float(rng.random()) * DAYS * 86400)
        kind = "impression" if rng.random() < 0.93 else "click"
        user = int(rng.integers(1, POOL + 1))
        merchant = others[int(rng.integers(0, len(others)))]
        cell = cells[int(rng.integers(0, len(cells)))] if kind == "impression" else None
        out.append(
            (
                kind,
                user,
                merchant,
                None,
                None,
                cell,
                at,
                "nearby" if kind == "impression" else "merchant_page",
            )
        )
    return out


def load(url: str, events: list[tuple[Any, ...]], vouchers: list[tuple[Any, ...]], now: datetime) -> None:
    events.sort(key=lambda e: e[6])
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (id, token_sha256, created_at) FROM STDIN") as copy:
            for user in range(1, POOL + 1):
                copy.write_row((user, f"{user:064x}", now - timedelta(days=400)))
        cur.execute("SELECT setval('users_id_seq', %s)", (POOL,))
        columns = (
            "id, deal_id, merchant_id, user_id, idempotency_key, nonce, code_digest, price_minor, "
            "currency, claimed_at, expires_at, redeemed_at"
        )
        with cur.copy(f"COPY vouchers ({columns}) FROM STDIN") as copy:
            for v, deal, merchant, user, price, claimed, redeemed in vouchers:
                copy.write_row(
                    (
                        v,
                        deal,
                        merchant,
                        user,
                        f"k{v}",
                        f"n{v}",
                        f"{v:064x}",
                        price,
                        "EUR",
                        claimed,
                        claimed + timedelta(days=30),
                        redeemed,
                    )
                )
        cur.execute("SELECT setval('vouchers_id_seq', %s)", (max(len(vouchers), 1),))
        with cur.copy(f"COPY events ({', '.join(COPIED)}) FROM STDIN") as copy:
            for i, (kind, user, merchant, deal, voucher, cell, at, surface) in enumerate(events, start=1):
                copy.write_row((i, kind, "server", user, merchant, deal, voucher, cell, at, at, surface))
        cur.execute("SELECT setval('events_id_seq', %s)", (len(events),))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


NAME = "Ramen Helsinki"


@dataclass(frozen=True)
class Shop:
    merchant: int
    deals: list[int]
    others: list[int]
    key: str  # the merchant's API key, issued for this run


def make_shop(engine: Engine, now: datetime) -> Shop:
    """The merchant, its 5 deals (alternately all day and weekday lunches) and 40 others."""
    with Session(engine) as session, session.begin():
        fields = MerchantFields(name=NAME, category="restaurant", lat=CENTRE[0], lon=CENTRE[1])
        merchant = create_merchant(session, fields, now).id
        deals = []
        for i, (listed, price) in enumerate(DEAL_PRICES):
            body = DealFields(
                title=f"Deal {i + 1}", kind="fixed_price", currency="EUR", list_price_minor=listed,
                deal_price_minor=price, valid_from=now - timedelta(days=60 - 7 * i),
                valid_until=now + timedelta(days=30), publish=True,
                windows=LUNCHES if i % 2 else [],
            )  # fmt: skip
            deals.append(create_deal(session, merchant, body, now, takes_payments=False).id)
        others = [
            create_merchant(
                session,
                MerchantFields(name=f"Other {i}", category="cafe", lat=CENTRE[0] + i * 1e-3, lon=CENTRE[1]),
                now,
            ).id
            for i in range(40)
        ]
        key = issue_api_key(session, merchant, now).key
    return Shop(merchant, deals, others, key)


def existing_shop(engine: Engine, now: datetime) -> Shop | None:
    """The shop of an earlier run (--reuse), with a new key (keys are stored hashed)."""
    with Session(engine) as session, session.begin():
        merchant = session.scalar(select(Merchant.id).where(Merchant.name == NAME))
        if merchant is None:
            return None
        deals = list(session.scalars(select(Deal.id).where(Deal.merchant_id == merchant).order_by(Deal.id)))
        others = list(session.scalars(select(Merchant.id).where(Merchant.name.like("Other %"))))
        key = issue_api_key(session, merchant, now).key
    return Shop(merchant, deals, others, key)
