"""How fast `lbs seed synthetic` loads a city, against the services' own write path.

    .venv/bin/python benchmarks/seed_load.py --database-url sqlite:////tmp/lbs_bench_seed.sqlite3
    .venv/bin/python benchmarks/seed_load.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench_seed

Peer, measured in the same run on a fresh database: the first ``--peer-rows`` merchants of
the same city through the merchant service (``seed.synthetic.seed_city`` →
``import_merchants``, SQLAlchemy executemany) and the first as many of the same events
through ``record_events``. Then the whole city (``--merchants``, ``--users``, ``--days``) through
the bulk path (``seed.loader.load``: COPY on PostgreSQL, executemany on SQLite), in one
transaction, as the command does. Prints rows/s for each and their ratio.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scratch_database import reset_database
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES
from lbs.db import BEGIN_IMMEDIATE, make_engine
from lbs.models.events import EVENT_KINDS
from lbs.services.events import record_events
from seed import loader
from seed.people import generate
from seed.synthetic import generate_city, generate_deals, seed_city

MARKER = "lbs_bench_seed_marker"
KEY = b"benchmark-secret-key-0123456789abcdef"


def _same_events(spec: loader.Spec, now: datetime, n: int) -> list[dict[str, Any]]:
    """The first n events the load will write, as record_events takes them."""
    until = now.replace(hour=0, minute=0, second=0, microsecond=0)
    city = generate_city(spec.merchants, seed=spec.seed)
    categories = np.array([CATEGORY_CODES[c] for c in city.categories], dtype=np.int64)
    deals = generate_deals(categories, until, spec.days, spec.seed)
    e = generate(city.lats, city.lons, categories, deals, spec.users, spec.days, until, spec.seed).events
    return [
        {
            "kind": EVENT_KINDS[e.kind[i]],
            "source": "client" if EVENT_KINDS[e.kind[i]] == "visit" else "server",
            "user_id": int(e.person[i]) + 1,
            "merchant_id": int(e.merchant[i]) + 1,
            "deal_id": int(e.deal[i]) + 1 if e.deal[i] >= 0 else None,
            "h3_cell": int(e.cell[i]) or None,
            "occurred_at": datetime.fromtimestamp(e.at[i], UTC),
            "received_at": datetime.fromtimestamp(e.at[i], UTC),
        }
        for i in range(min(n, len(e)))
    ]


def _peer(url: str, spec: loader.Spec, rows: int, now: datetime) -> tuple[float, float]:
    """Merchants/s through import_merchants and events/s through record_events, same data."""
    events = _same_events(spec, now, rows)
    reset_database(url, MARKER)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        started = time.perf_counter()
        seed_city(session, rows, now, seed=spec.seed)
        merchants = rows / (time.perf_counter() - started)
    with Session(engine) as session, session.begin():
        started = time.perf_counter()
        for start in range(0, len(events), 10_000):
            record_events(session, events[start : start + 10_000])
        events_per_s = len(events) / (time.perf_counter() - started)
    engine.dispose()
    return merchants, events_per_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="sqlite:////tmp/lbs_bench_seed.sqlite3")
    parser.add_argument("--merchants", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--peer-rows", type=int, default=50_000)
    args = parser.parse_args()
    now = datetime.now(UTC)
    spec = loader.Spec(args.merchants, args.users, args.days, args.seed)

    peer_merchants, peer_events = _peer(args.database_url, spec, args.peer_rows, now)
    print(
        f"peer: merchant service {peer_merchants:,.0f} merchants/s, record_events {peer_events:,.0f} events/s"
    )

    reset_database(args.database_url, MARKER)
    engine = make_engine(args.database_url)
    started = time.perf_counter()
    with Session(engine) as session:
        session.connection(execution_options={BEGIN_IMMEDIATE: True})
        loaded = loader.load(session, spec, now, KEY, lambda line: print(f"  {line}", flush=True))
        session.commit()
    total_s = time.perf_counter() - started
    engine.dispose()

    rows = sum(loaded.counts.values())
    bulk_merchants = loaded.counts["merchants"] / loaded.seconds["merchants"]
    bulk_events = loaded.counts["events"] / loaded.seconds["events"]
    service_estimate = args.merchants / peer_merchants + loaded.counts["events"] / peer_events
    print(f"database: {engine.dialect.name}")
    print(f"whole load: {rows:,} rows in {total_s:.1f} s (generation {loaded.seconds['generate']:.1f} s)")
    print(
        f"merchants: bulk {bulk_merchants:,.0f}/s vs service {peer_merchants:,.0f}/s "
        f"= {bulk_merchants / peer_merchants:.1f}x"
    )
    print(
        f"events: bulk {bulk_events:,.0f}/s vs service {peer_events:,.0f}/s "
        f"= {bulk_events / peer_events:.1f}x"
    )
    print(
        f"merchants + events through the services would take ~{service_estimate:.0f} s; "
        f"the bulk path took {loaded.seconds['merchants'] + loaded.seconds['events']:.0f} s"
    )


if __name__ == "__main__":
    main()
