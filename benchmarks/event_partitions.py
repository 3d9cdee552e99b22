"""The event log partitioned by time (lbs db partition-events) against the plain table, same rows.

    .venv/bin/python benchmarks/event_partitions.py            # copies lbs_bench's events (minutes)
    .venv/bin/python benchmarks/event_partitions.py --reuse copy --interval weekly   # partition again
    .venv/bin/python benchmarks/event_partitions.py --reuse all    # measure an earlier run's databases

Copies the events of ``--source-url`` (read only; default the 1M-merchant city lbs_bench)
into a database of its own (``--flat-url``, plain table), clones that with CREATE DATABASE
... TEMPLATE into ``--partitioned-url`` and partitions the clone with
``lbs.event_partitions.partition_events`` (timed: the migration of an existing table).
Then, alternating between the two databases, ``--repeats`` times each: ``lbs train``'s
window read (``read_interactions``) over the whole log and over its last 7 days, the
merchant feed (``merchant_feed``, 200 merchants), the client-event dedup look-up of
``ingest_client_events`` (200 users) and a write of 20,000 events in batches of 1,000 as
the event buffer writes them (rolled back). Prints medians and flat ÷ partitioned.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from scratch_database import libpq_url, reset_database
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.event_partitions import is_partitioned, partition_events
from lbs.models import Event
from lbs.services.events import merchant_feed, record_events
from lbs.training import read_interactions
from recommender.interactions import Weighting

MARKER = "lbs_bench_event_partitions_marker"
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"
QUERIES = 200
WRITES = 20_000


def copy_events(source_url: str, target_url: str) -> int:
    """Every event of the source into the target's (empty) table, binary COPY to COPY."""
    copied = 0
    with (
        psycopg.connect(libpq_url(source_url)) as source,
        psycopg.connect(libpq_url(target_url)) as target,
    ):
        with (
            source.cursor().copy("COPY events TO STDOUT (FORMAT binary)") as out,
            target.cursor().copy("COPY events FROM STDIN (FORMAT binary)") as into,
        ):
            for chunk in out:
                into.write(chunk)
                copied += len(chunk)
        target.execute("SELECT setval('events_id_seq', (SELECT max(id) FROM events))")
    with psycopg.connect(libpq_url(target_url), autocommit=True) as target:
        target.execute("VACUUM ANALYZE events")
    return copied


def clone(flat_url: str, partitioned_url: str) -> None:
    name, template = make_url(partitioned_url).database, make_url(flat_url).database
    with psycopg.connect(libpq_url(flat_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def timed(engine: Engine, run: Callable[[Session], object]) -> float:
    with Session(engine) as session:
        started = time.perf_counter()
        run(session)
        return time.perf_counter() - started


def cases(engine: Engine, rng: np.random.Generator) -> dict[str, Callable[[Session], object]]:
    with Session(engine) as session:
        last = session.execute(text("SELECT max(occurred_at) FROM events")).scalar_one()
        merchants = session.scalars(
            select(Event.merchant_id)
            .where(Event.kind == "click")
            .distinct()
            .order_by(Event.merchant_id)
            .limit(50_000)
        ).all()
        users = session.scalars(select(Event.user_id).distinct().order_by(Event.user_id).limit(50_000)).all()
    until = last + timedelta(seconds=1)
    kinds = tuple(k for k, w in Weighting().kinds.items() if w > 0)
    feed_of = rng.choice(np.asarray(merchants), QUERIES).tolist()
    dedup_of = rng.choice(np.asarray(users), QUERIES).tolist()
    client_ids = [f"bench-{i}" for i in range(20)]
    now = datetime.now(UTC)

    def feed(session: Session) -> None:
        for merchant_id in feed_of:
            merchant_feed(session, merchant_id, 0, 100)

    def dedup(session: Session) -> None:
        for user_id in dedup_of:
            session.scalars(
                select(Event.client_event_id).where(
                    Event.user_id == user_id, Event.client_event_id.in_(client_ids)
                )
            ).all()

    def write(session: Session) -> None:
        rows = [
            {
                "kind": "impression",
                "source": "server",
                "user_id": int(dedup_of[i % QUERIES]),
                "merchant_id": int(feed_of[i % QUERIES]),
                "deal_id": None,
                "voucher_id": None,
                "h3_cell": None,
                "client_event_id": None,
                "occurred_at": now,
                "received_at": now,
            }
            for i in range(WRITES)
        ]
        for start in range(0, WRITES, 1000):
            record_events(session, rows[start : start + 1000])
        session.rollback()

    return {
        "`lbs train` window read, whole log (30 days)": lambda s: read_interactions(
            s, until - timedelta(days=31), until, kinds
        ),
        "`lbs train` window read, last 7 days": lambda s: read_interactions(
            s, until - timedelta(days=7), until, kinds
        ),
        "the same 7 days counted in the database (no rows to Python)": lambda s: s.execute(
            select(func.count())
            .select_from(Event)
            .where(Event.occurred_at >= until - timedelta(days=7), Event.occurred_at < until)
            .where(Event.kind.in_(kinds), Event.user_id.is_not(None), Event.merchant_id.is_not(None))
        ).scalar_one(),
        f"merchant feed, {QUERIES} merchants": feed,
        f"client-event dedup look-up, {QUERIES} users": dedup,
        f"write {WRITES:,} events (batches of 1,000)": write,
    }


def tables_scanned(engine: Engine, days: int) -> int:
    """How many tables the plan of the window read over the last ``days`` reads."""
    with engine.connect() as connection:
        last = connection.execute(text("SELECT max(occurred_at) FROM events")).scalar_one()
        plan = connection.execute(
            text(
                "EXPLAIN SELECT user_id, merchant_id, kind, occurred_at FROM events "
                "WHERE occurred_at >= :since AND occurred_at < :until AND kind <> 'impression'"
            ),
            {"since": last - timedelta(days=days), "until": last + timedelta(seconds=1)},
        ).scalars()
        return len({m.group(1) for line in plan if (m := re.search(r"Scan .*?on (events\w*)", line))})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source-url", default=SERVER + "lbs_bench")
    parser.add_argument("--flat-url", default=SERVER + "lbs_bench_events_flat")
    parser.add_argument("--partitioned-url", default=SERVER + "lbs_bench_events_partitioned")
    parser.add_argument("--interval", default="monthly", choices=("weekly", "monthly"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reuse",
        choices=("nothing", "copy", "all"),
        default="nothing",
        help="an earlier run's plain copy (then clone and partition it again), or both databases",
    )
    args = parser.parse_args()

    if args.reuse == "nothing":
        reset_database(args.flat_url, MARKER)
        started = time.perf_counter()
        size = copy_events(args.source_url, args.flat_url)
        print(f"copied the events of {make_url(args.source_url).database}: {size / 1e6:,.0f} MB in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    if args.reuse != "all":
        clone(args.flat_url, args.partitioned_url)
        report = partition_events(make_engine(args.partitioned_url), args.interval)
        print(f"partition_events ({args.interval}): {report.rows_moved:,} rows into {report.partitions} "
              f"partitions in {report.seconds:.1f} s (the table locked meanwhile)")  # fmt: skip
    flat, partitioned = make_engine(args.flat_url), make_engine(args.partitioned_url)
    with flat.connect() as a, partitioned.connect() as b:
        if is_partitioned(a) or not is_partitioned(b):
            raise SystemExit("--flat-url must hold the plain table and --partitioned-url the partitioned one")
        rows = a.execute(text("SELECT count(*) FROM events")).scalar_one()
        if b.execute(text("SELECT count(*) FROM events")).scalar_one() != rows:
            raise SystemExit("the two databases hold different events: run with --reuse nothing")

    # The same merchants and users on both: the same rows, chosen in id order, same seed.
    plans = [(engine, cases(engine, np.random.default_rng(7))) for engine in (flat, partitioned)]
    runs: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in plans[0][1]}
    for _ in range(args.repeats):
        for i, (engine, plan) in enumerate(plans):
            for name, run in plan.items():
                runs[name][i].append(timed(engine, run))

    print(f"\n{rows:,} events; median of {args.repeats} runs each, alternating; load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}\n")  # fmt: skip
    print("| query | plain table | partitioned | plain ÷ partitioned |")
    print("| --- | ---: | ---: | ---: |")
    for name, (a_s, b_s) in runs.items():
        a_m, b_m = statistics.median(a_s), statistics.median(b_s)
        print(f"| {name} | {a_m * 1000:,.0f} ms | {b_m * 1000:,.0f} ms | {a_m / b_m:.2f} |")
    for days in (7, 31):
        scans = [tables_scanned(e, days) for e in (flat, partitioned)]
        print(f"\nwindow of the last {days} days: tables read, plain {scans[0]}, partitioned {scans[1]}")


if __name__ == "__main__":
    main()
