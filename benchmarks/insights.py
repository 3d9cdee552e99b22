"""Merchant insights on a million events: GET /v1/merchant/insights against one SQL query over the raw log.

Run from the repository root (PostgreSQL; the database is dropped and made again, and the
script refuses one it did not make):

    .venv/bin/python benchmarks/insights.py                     # 1,000,000 events, ~5 minutes
    .venv/bin/python benchmarks/insights.py --events 200000     # a quicker look

Data (seeded): one merchant in Helsinki with 5 deals and about ``--events`` events over the
90 local days to today: impressions from ~3,400 of 20,000 users a day (a few regulars, many
occasional; 1-6 a user-day, mostly in the user's habitual hour; 70 % on nearby at the user's
usual cell, 30 % on the map), 5 % of them clicked (the deal's page, or the merchant's for
impressions without a deal), 10 % of deal clicks claimed, 70 % of claims redeemed within two
days (vouchers at the deal's price), and 300 visits a day; plus ``--others`` events of 40
other merchants. Written by COPY, in time order, as the log would hold them.

Measured, in one run:

- the rollup built from nothing (``refresh_insights`` over every event: the cost of
  enabling insights on an existing log), and kept: a batch of ``--batch`` new city-wide events
  written as the event buffer writes them (``write_batch``) and then rolled up, repeated;
- ``GET /v1/merchant/insights`` through the Flask test client, warm, for by=day, hour, area
  and source over the whole 90 days and the default 28, with a tail of events after the
  watermark as a read meets it between two refreshes: p50 and p95 of ``--repeats`` calls;
- the peer: the same numbers from one SQL query over the raw events (distinct users,
  unique user-days, counts and money per bucket; for area and source the last touch of
  each claim, redemption and click by LATERAL subqueries), timed the same way, and checked
  to give the service's numbers bucket by bucket.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import h3
import numpy as np
import psycopg
from scratch_database import libpq_url, reset_database
from sqlalchemy import text
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.services.api_keys import issue_api_key
from lbs.services.deals import DealFields, create_deal
from lbs.services.events import write_batch
from lbs.services.insights_rollup import refresh_insights
from lbs.services.merchants import MerchantFields, create_merchant

MARKER = "lbs_bench_insights_marker"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench_insights"
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


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def timed(run: Callable[[], object], repeats: int, warm: int = 2) -> tuple[list[float], object]:
    for _ in range(warm):
        result = run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return times, result


# The peer: every number of a bucket from the raw events in one statement. Buckets by the
# event's own local time (day, hour) or by its last touch (area, source), as the service.
PEER = """
WITH ev AS (
  SELECT e.id, e.user_id, e.kind, e.deal_id, e.h3_cell, e.surface, e.occurred_at,
         (e.occurred_at AT TIME ZONE :tz) AS local,
         v.price_minor, d.list_price_minor,
         coalesce(v.claimed_at, e.occurred_at) AS touch_at, coalesce(v.deal_id, e.deal_id) AS touch_deal
  FROM events e
  LEFT JOIN vouchers v ON v.id = e.voucher_id AND e.kind = 'redemption'
  LEFT JOIN deals d ON d.id = v.deal_id
  WHERE e.merchant_id = :m AND e.kind IN ('impression', 'click', 'claim', 'redemption')
    AND e.user_id IS NOT NULL AND e.occurred_at >= :lo AND e.occurred_at < :hi
), placed AS (
  SELECT ev.*, {bucket} AS bucket FROM ev {joins}
)
SELECT bucket, count(DISTINCT user_id) AS users,
       count(DISTINCT (user_id, local::date)) FILTER (WHERE kind = 'impression') AS impressions,
       count(*) FILTER (WHERE kind = 'click') AS clicks,
       count(*) FILTER (WHERE kind = 'claim') AS claims,
       count(*) FILTER (WHERE kind = 'redemption') AS redemptions,
       coalesce(sum(price_minor) FILTER (WHERE kind = 'redemption'), 0) AS revenue_minor,
       coalesce(sum(greatest(list_price_minor - price_minor, 0)) FILTER (WHERE kind = 'redemption'), 0)
         AS discount_minor
FROM placed WHERE local::date BETWEEN :first AND :last GROUP BY bucket
"""
# An H3 cell's res-7 parent: resolution bits (52-55) set to 7, digits 8-15 to 7 (all ones).
AREA = "to_hex((({cell} | 16777215) & ~(15::bigint << 52)) | (7::bigint << 52))"
LAST_SEEN = """LEFT JOIN LATERAL (
    SELECT t.h3_cell AS seen_cell FROM events t WHERE t.user_id = ev.user_id AND t.merchant_id = :m
      AND t.kind = 'impression' AND t.h3_cell IS NOT NULL
      AND (ev.touch_deal IS NULL OR t.deal_id = ev.touch_deal)
      AND t.occurred_at <= ev.touch_at AND t.occurred_at >= ev.touch_at - interval '30 days'
    ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) seen ON ev.kind <> 'impression'"""
LAST_TOUCH = """LEFT JOIN LATERAL (
    SELECT t.surface FROM events t WHERE t.user_id = ev.user_id AND t.merchant_id = :m
      AND t.kind IN ('impression', 'click') AND t.deal_id = ev.touch_deal
      AND t.occurred_at <= ev.touch_at AND t.occurred_at >= ev.touch_at - interval '30 days'
    ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) touch ON ev.kind IN ('claim', 'redemption')"""
BUCKETS = {
    "day": ("local::date::text", ""),
    "hour": ("extract(hour FROM local)::int::text", ""),
    "area": (
        "CASE WHEN kind = 'impression' THEN coalesce(" + AREA.format(cell="ev.h3_cell") + ", 'unknown') "
        "ELSE coalesce(" + AREA.format(cell="seen.seen_cell") + ", 'unknown') END",
        LAST_SEEN,
    ),
    "source": (
        "CASE WHEN kind IN ('impression', 'click') THEN coalesce(ev.surface, 'unknown') "
        "WHEN touch_deal IS NULL THEN 'unknown' ELSE coalesce(touch.surface, 'unknown') END",
        LAST_TOUCH,
    ),
}
NUMBERS = ("users", "impressions", "clicks", "claims", "redemptions", "revenue_minor", "discount_minor")


def peer(session: Session, by: str, merchant: int, first: date, last: date) -> dict[str, tuple[int, ...]]:
    bucket, joins = BUCKETS[by]
    lo = datetime(first.year, first.month, first.day, tzinfo=TZ) - timedelta(days=1)
    hi = datetime(last.year, last.month, last.day, tzinfo=TZ) + timedelta(days=2)
    rows = session.execute(
        text(PEER.format(bucket=bucket, joins=joins)),
        {"tz": "Europe/Helsinki", "m": merchant, "lo": lo, "hi": hi, "first": first, "last": last},
    ).all()
    return {r.bucket: tuple(getattr(r, n) for n in NUMBERS) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--events", type=int, default=1_000_000, help="the merchant's events")
    parser.add_argument("--others", type=int, default=50_000, help="other merchants' events")
    parser.add_argument("--batch", type=int, default=2_000, help="events per maintenance batch")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--peer-repeats", type=int, default=3, help="calls of the one-SQL peer per row")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    now = datetime.now(UTC).replace(microsecond=0)
    reset_database(args.database_url, MARKER)
    engine = make_engine(args.database_url)
    with Session(engine) as session, session.begin():
        fields = MerchantFields(name="Ramen Helsinki", category="restaurant", lat=CENTRE[0], lon=CENTRE[1])
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
    started = time.perf_counter()
    events, vouchers = generate(rng, merchant, deals, others, now, args.events)
    events += other_events(rng, others, now, args.others)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    load(args.database_url, events, vouchers, now)
    loaded = time.perf_counter() - started
    kinds = {
        k: sum(1 for e in events if e[0] == k and e[2] == merchant)
        for k in ("impression", "click", "claim", "redemption", "visit")
    }
    print(
        f"generated {len(events):,} events ({kinds}) and {len(vouchers):,} vouchers in {generated:.0f} s, "
        f"loaded by COPY in {loaded:.0f} s"
    )

    # The rollup from nothing: the first refresh only notes the newest id (settle 0: nothing else writes).
    started = time.perf_counter()
    rolled = 0
    while True:
        with Session(engine) as session, session.begin():
            report = refresh_insights(session, datetime.now(UTC), settle_s=0)
        rolled += report.events
        if report.events == 0 and report.rolled_up_to == report.waiting_from:
            break
    build = time.perf_counter() - started
    with engine.connect() as conn:
        rows, size = conn.execute(
            text("SELECT count(*), pg_total_relation_size('insight_days') FROM insight_days")
        ).one()
        events_size = conn.execute(text("SELECT pg_total_relation_size('events')")).scalar_one()
    print(
        f"rollup built: {rolled:,} events in {build:.1f} s ({rolled / build:,.0f} events/s): {rows:,} rows, "
        f"{size / 2**20:.1f} MiB (events: {events_size / 2**20:.0f} MiB)"
    )

    # Maintenance: a city-wide batch written as the buffer writes it, then rolled up.
    costs = []
    users = rng.integers(1, POOL + 1, size=args.batch)
    for round_ in range(5):
        at = datetime.now(UTC)
        batch = [
            {"kind": "impression", "source": "server", "user_id": int(u), "merchant_id": int(m),
             "deal_id": int(d) if m == merchant else None, "voucher_id": None,
             "h3_cell": cells_near(rng, 1, 0.05)[0],
             "client_event_id": None, "occurred_at": at, "received_at": at, "surface": "nearby"}
            for u, m, d in zip(
                users, rng.choice([merchant, *others], args.batch), rng.choice(deals, args.batch), strict=True
            )
        ]  # fmt: skip
        with Session(engine) as session, session.begin():
            started = time.perf_counter()
            write_batch(session, batch)
            written = time.perf_counter() - started
        with Session(engine) as session, session.begin():
            started = time.perf_counter()
            report = refresh_insights(session, datetime.now(UTC), settle_s=0)
            refreshed = time.perf_counter() - started
        if round_:  # the first only notes the newest id
            costs.append((written, refreshed, report.events, report.rows))
    written = statistics.median(c[0] for c in costs)
    refreshed = statistics.median(c[1] for c in costs)
    print(
        f"maintenance, batches of {args.batch:,}: write_batch {written * 1000:.0f} ms, "
        f"refresh {refreshed * 1000:.0f} ms "
        f"({refreshed / args.batch * 1e6:.0f} µs an event, {statistics.median(c[3] for c in costs):.0f} rows)"
    )
    # A tail after the watermark, as a read meets it between refreshes: one more batch.
    with Session(engine) as session, session.begin():
        write_batch(session, batch)
    tail = sum(1 for e in batch if e["merchant_id"] == merchant)

    from lbs.app import create_app

    app = create_app({"database_url": args.database_url, "log_level": "WARNING"})
    client = app.test_client()
    today = now.astimezone(TZ).date()
    spans = {
        "90 days": (today - timedelta(days=DAYS - 1), today),
        "28 days": (today - timedelta(days=27), today),
    }
    print()
    print(
        "| by | range | ours p50 ms | ours p95 ms | one SQL over the events p50 ms | p95 ms "
        "| SQL ÷ ours (p50) | same numbers |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for by in ("day", "hour", "area", "source"):
        for span, (first, last) in spans.items():
            query = {"from": first.isoformat(), "to": last.isoformat(), "by": by}

            def ours(query: dict[str, str] = query) -> dict[str, Any]:
                response = client.get(
                    "/v1/merchant/insights", query_string=query, headers={"Authorization": f"Bearer {key}"}
                )
                assert response.status_code == 200, response.get_data(as_text=True)
                return dict(response.get_json())

            times, body = timed(ours, args.repeats)
            with Session(engine) as session:
                peer_times, expected = timed(
                    lambda by=by, first=first, last=last: peer(session, by, merchant, first, last),
                    args.peer_repeats,
                    warm=0,  # seconds a call: cold or warm hardly differs
                )
            got = {
                b["key"]: tuple(b[n] for n in NUMBERS)
                for b in body["buckets"]
                if not b["suppressed"] and b["users"]
            }
            differ = [k for k in got if got[k] != expected.get(k)]  # type: ignore[union-attr]
            hidden = sum(1 for b in body["buckets"] if b["suppressed"])
            p50, p95 = percentiles(times)
            q50, q95 = percentiles(peer_times)
            same = "yes" if not differ else f"**{len(differ)} differ** ({differ[:3]})"
            print(
                f"| {by} | {span} | {p50:.0f} | {p95:.0f} | {q50:.0f} | {q95:.0f} | {q50 / p50:.1f}x "
                f"| {same}, {len(got)} buckets shown, {hidden} hidden |"
            )
    print()
    for deal in (deals[0], deals[1]):  # all day; weekday lunches (windows)
        query = {"deal_id": str(deal), "uplift": "true", "by": "day"}
        plain = {"deal_id": str(deal), "by": "day"}

        def read(query: dict[str, str]) -> dict[str, Any]:
            response = client.get(
                "/v1/merchant/insights", query_string=query, headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == 200, response.get_data(as_text=True)
            return dict(response.get_json())

        with_uplift, body = timed(lambda q=query: read(q), args.repeats)
        without, _ = timed(lambda q=plain: read(q), args.repeats)
        print(
            f"deal {deal} (28 days) with uplift=true: p50 {percentiles(with_uplift)[0]:.0f} ms, "
            f"without {percentiles(without)[0]:.0f} ms; {body['uplift']}"
        )  # type: ignore[index]
    print(f"tail after the watermark: {tail} of the merchant's events; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
