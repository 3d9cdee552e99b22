"""Merchant insights on a million events: GET /v1/merchant/insights against one SQL query over the raw log.

Run from the repository root (PostgreSQL; the database is dropped and made again, and the
script refuses one it did not make):

    .venv/bin/python benchmarks/insights.py                     # 1,000,000 events, ~16 minutes
    .venv/bin/python benchmarks/insights.py --events 200000     # a quicker look
    .venv/bin/python benchmarks/insights.py --reuse             # the last run's data, reads only

The data (benchmarks/insights_data.py): one Helsinki merchant with 5 deals and about
``--events`` events over the 90 local days to today, plus ``--others`` events of 40 other
merchants, written by COPY in time order.

Measured, in one run:

- the rollup built from nothing (``refresh_insights`` over every event: the cost of
  enabling insights on an existing log), and kept: a batch of ``--batch`` new city-wide events
  written as the event buffer writes it (``write_batch``) and then rolled up, repeated;
- ``GET /v1/merchant/insights`` through the Flask test client, warm, for by=day, hour, area
  and source over the whole 90 days and the default 28, with a tail of events after the
  watermark as a read meets it between two refreshes: p50 and p95 of ``--repeats`` calls;
- the peer: the same numbers from one SQL query over the raw events
  (benchmarks/peer/insights_sql.py), timed the same way, and checked to give the service's
  numbers bucket by bucket;
- what a user feels (benchmarks/insights_http.py): the 90-day reads through `lbs serve`
  (gunicorn, ``--workers``) under wrk with ``--connections`` for ``--http-seconds``, and the
  same requests to the peer app (Flask + gunicorn + the same SQL) in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from insights_data import (
    DAYS,
    POOL,
    TZ,
    Shop,
    cells_near,
    existing_shop,
    generate,
    load,
    make_shop,
    other_events,
)  # fmt: skip
from insights_http import HttpCase, http_table, measure_http
from peer.insights_sql import NUMBERS, peer_insights
from scratch_database import libpq_url, reset_database
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.services.events import write_batch
from lbs.services.insights_rollup import refresh_insights

MARKER = "lbs_bench_insights_marker"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench_insights"


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


def build(args: argparse.Namespace, engine: Engine, rng: np.random.Generator, now: datetime) -> Shop:
    """The data, loaded and rolled up, with the rollup's build and upkeep measured."""
    shop = make_shop(engine, now)
    started = time.perf_counter()
    events, vouchers = generate(rng, shop.merchant, shop.deals, shop.others, now, args.events)
    events += other_events(rng, shop.others, now, args.others)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    load(args.database_url, events, vouchers, now)
    loaded = time.perf_counter() - started
    kinds = {
        k: sum(1 for e in events if e[0] == k and e[2] == shop.merchant)
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
    built = time.perf_counter() - started
    with engine.connect() as conn:
        rows, size = conn.execute(
            text("SELECT count(*), pg_total_relation_size('insight_days') FROM insight_days")
        ).one()
        events_size = conn.execute(text("SELECT pg_total_relation_size('events')")).scalar_one()
    print(
        f"rollup built: {rolled:,} events in {built:.1f} s ({rolled / built:,.0f} events/s): {rows:,} rows, "
        f"{size / 2**20:.1f} MiB (events: {events_size / 2**20:.0f} MiB)"
    )

    # Maintenance: a city-wide batch written as the buffer writes it, then rolled up.
    costs = []
    for round_ in range(6):
        batch = city_batch(rng, shop, args.batch)
        with Session(engine) as session, session.begin():
            started = time.perf_counter()
            write_batch(session, batch)
            written = time.perf_counter() - started
        if round_ == 5:  # the last stays after the watermark: the tail a read meets between refreshes
            print(f"tail after the watermark: {sum(1 for e in batch if e['merchant_id'] == shop.merchant)} "
                  "of the merchant's events")  # fmt: skip
            break
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
    return shop


def city_batch(rng: np.random.Generator, shop: Shop, size: int) -> list[dict[str, Any]]:
    """``size`` impressions across the city, as the event buffer writes them."""
    at = datetime.now(UTC)
    users = rng.integers(1, POOL + 1, size=size)
    merchants = rng.choice([shop.merchant, *shop.others], size)
    return [
        {"kind": "impression", "source": "server", "user_id": int(u), "merchant_id": int(m),
         "deal_id": int(d) if m == shop.merchant else None, "voucher_id": None,
         "h3_cell": cells_near(rng, 1, 0.05)[0],
         "client_event_id": None, "occurred_at": at, "received_at": at, "surface": "nearby"}
        for u, m, d in zip(users, merchants, rng.choice(shop.deals, size), strict=True)
    ]  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--reuse", action="store_true", help="read the last run's data instead of making it")
    parser.add_argument("--events", type=int, default=1_000_000, help="the merchant's events")
    parser.add_argument("--others", type=int, default=50_000, help="other merchants' events")
    parser.add_argument("--batch", type=int, default=2_000, help="events per maintenance batch")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--peer-repeats", type=int, default=3, help="calls of the one-SQL peer per row")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of lbs and of the peer")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 2], help="wrk's connections, each")
    parser.add_argument("--http-seconds", type=int, default=15, help="wrk's run against lbs, per case")
    parser.add_argument("--peer-http-seconds", type=int, default=40, help="wrk's run against the peer")
    parser.add_argument("--seed", type=int, default=19)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    now = datetime.now(UTC).replace(microsecond=0)
    shop = existing_shop(make_engine(args.database_url), now) if args.reuse else None
    if shop is None:
        if args.reuse:
            print("--reuse: no earlier run's data; making it")
        reset_database(args.database_url, MARKER)
        shop = build(args, make_engine(args.database_url), rng, now)
    engine = make_engine(args.database_url)

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

    def read(query: dict[str, str]) -> dict[str, Any]:
        response = client.get(
            "/v1/merchant/insights", query_string=query, headers={"Authorization": f"Bearer {shop.key}"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return dict(response.get_json())

    with psycopg.connect(libpq_url(args.database_url)) as conn:
        for by in ("day", "hour", "area", "source"):
            for span, (first, last) in spans.items():
                query = {"from": first.isoformat(), "to": last.isoformat(), "by": by}
                times, body = timed(lambda q=query: read(q), args.repeats)  # type: ignore[misc]
                peer_times, expected = timed(
                    lambda by=by, first=first, last=last: peer_insights(conn, by, shop.merchant, first, last),
                    args.peer_repeats,
                    warm=0,  # seconds a call: cold or warm hardly differs
                )
                got = {
                    b["key"]: tuple(b[n] for n in NUMBERS)
                    for b in body["buckets"]  # type: ignore[index]
                    if not b["suppressed"] and b["users"]
                }
                differ = [k for k in got if got[k] != expected.get(k)]  # type: ignore[union-attr]
                hidden = sum(1 for b in body["buckets"] if b["suppressed"])  # type: ignore[index]
                p50, p95 = percentiles(times)
                q50, q95 = percentiles(peer_times)
                same = "yes" if not differ else f"**{len(differ)} differ** ({differ[:3]})"
                print(
                    f"| {by} | {span} | {p50:.0f} | {p95:.0f} | {q50:.0f} | {q95:.0f} | {q50 / p50:.1f}x "
                    f"| {same}, {len(got)} buckets shown, {hidden} hidden |",
                    flush=True,
                )
    print()
    for deal in (shop.deals[0], shop.deals[1]):  # all day; weekday lunches (windows)
        query = {"deal_id": str(deal), "uplift": "true", "by": "day"}
        plain = {"deal_id": str(deal), "by": "day"}
        with_uplift, body = timed(lambda q=query: read(q), args.repeats)  # type: ignore[misc]
        without, _ = timed(lambda q=plain: read(q), args.repeats)  # type: ignore[misc]
        print(
            f"deal {deal} (28 days) with uplift=true: p50 {percentiles(with_uplift)[0]:.0f} ms, "
            f"without {percentiles(without)[0]:.0f} ms; {body['uplift']}"  # type: ignore[index]
        )
    engine.dispose()

    print(
        f"\nthrough gunicorn ({args.workers} workers) under wrk ({args.connections} connections, each), "
        f"{args.http_seconds} s a case against lbs, {args.peer_http_seconds} s against the peer:"
    )
    cases = [HttpCase(by, "90 days", *spans["90 days"]) for by in ("day", "hour", "area", "source")]
    results = measure_http(
        args.database_url, shop.merchant, shop.key, cases, workers=args.workers,
        connections=args.connections, seconds=args.http_seconds, peer_seconds=args.peer_http_seconds,
    )  # fmt: skip
    print()
    print("\n".join(http_table(results)))
    print(f"python {sys.version.split()[0]}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
