"""`/v1/nearby?sort=relevance` against `sort=distance`, the whole page through the app.

    .venv/bin/python benchmarks/nearby_relevance.py            # SQLite, /tmp/lbs_bench_relevance.sqlite3
    .venv/bin/python benchmarks/nearby_relevance.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench_relevance

A synthetic town (recommender.synthetic: merchants on a 200 m grid, users with favourite
places) goes into a scratch database (dropped and re-migrated each run; one this script
did not make is refused): merchants through the import service, users through the user
service, visits as events. `lbs train`'s code trains a model into a temporary directory.
Then the same users at the same points ask for a page, alternately ranked by relevance
(history query, 500 candidates re-ranked, deals of all of them, reasons) and by distance
(the peer: the index's nearest page with its deals), through the Flask test client.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from run_report import git_state, machine, ratio
from scratch_database import reset_database
from sqlalchemy import insert
from sqlalchemy.orm import Session

from lbs.app import create_app
from lbs.categories import Category
from lbs.db import make_engine
from lbs.models import Event
from lbs.services.merchants import MerchantFields, import_merchants
from lbs.services.users import create_user
from lbs.training import train_from_events
from recommender import artifact
from recommender.synthetic import town

MARKER = "lbs_bench_relevance_marker"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="sqlite:////tmp/lbs_bench_relevance.sqlite3")
    parser.add_argument("--side", type=int, default=40, help="merchants per side of the grid")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--visits", type=int, default=40, help="per user")
    parser.add_argument("--queries", type=int, default=400, help="per mode")
    parser.add_argument("--radius-m", type=float, default=1000)
    args = parser.parse_args()

    reset_database(args.database_url, MARKER)
    now = datetime.now(UTC).replace(microsecond=0)
    world = town(
        users=args.users,
        side=args.side,
        visits_per_user=args.visits,
        start_s=(now - timedelta(days=120)).timestamp(),
    )
    engine = make_engine(args.database_url)
    categories = list(Category)
    rows = [
        MerchantFields(name=f"m{i}", category=categories[i % len(categories)], lat=float(a), lon=float(o))
        for i, a, o in zip(world.item_ids, world.lats, world.lons, strict=True)
    ]
    with Session(engine) as session, session.begin():
        import_merchants(session, rows, now)
        tokens = {int(u): create_user(session, now) for u in np.unique(world.users)}
        session.execute(
            insert(Event),
            [
                {"kind": "visit", "source": "client", "user_id": tokens[int(u)][0], "merchant_id": int(m),
                 "occurred_at": datetime.fromtimestamp(t, UTC), "received_at": datetime.fromtimestamp(t, UTC)}
                for u, m, t in zip(world.users, world.items, world.times, strict=True)
            ],
        )  # fmt: skip
    started = time.perf_counter()
    with Session(engine) as session:
        model = train_from_events(session, now, days=365, radius_m=2000)
    train_s = time.perf_counter() - started
    models = Path(tempfile.mkdtemp(prefix="lbs-bench-models-"))
    artifact.save(model, models)
    app = create_app({"database_url": args.database_url, "model_dir": str(models), "model_reload_s": 3600.0})
    client = app.test_client()

    rng = np.random.default_rng(3)
    users = rng.choice(list(tokens), args.queries)
    spots = rng.integers(0, len(world.item_ids), args.queries)
    timings: dict[str, list[float]] = {"relevance": [], "distance": []}
    at = (now - timedelta(minutes=1)).isoformat()
    for k in range(args.queries):
        lat, lon = world.lats[spots[k]], world.lons[spots[k]]
        headers = {"Authorization": f"Bearer {tokens[int(users[k])][1]}"}
        for sort in ("relevance", "distance"):
            query = {"lat": lat, "lon": lon, "radius_m": args.radius_m, "limit": 20, "sort": sort, "at": at}
            t0 = time.perf_counter()
            response = client.get("/v1/nearby", query_string=query, headers=headers)
            timings[sort].append(time.perf_counter() - t0)
            assert response.status_code == 200, response.get_data(as_text=True)
            assert response.get_json()["ranking"] == sort
    skip = min(20, args.queries // 10)  # warm-up
    print(f"# nearby relevance benchmark\n\n{git_state()}; {machine('lightgbm', 'implicit', 'flask')}")
    print(f"database {engine.dialect.name}; {len(world.item_ids):,} merchants, {len(tokens):,} users, "
          f"{len(world.users):,} visits; model trained in {train_s:.1f} s; radius {args.radius_m:g} m, "
          f"limit 20, {args.queries} queries per mode\n")  # fmt: skip
    print("| sort | pages/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |")
    summary = {}
    for sort, values in timings.items():
        ms = np.asarray(values[skip:]) * 1000
        summary[sort] = (1000 / ms.mean(), *np.percentile(ms, [50, 99]))
        print(f"| {sort} | {summary[sort][0]:.0f} | {summary[sort][1]:.2f} | {summary[sort][2]:.2f} |")
    print(
        f"\nrelevance / distance pages per second: {ratio(summary['relevance'][0], summary['distance'][0])}"
    )


if __name__ == "__main__":
    main()
