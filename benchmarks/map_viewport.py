"""What a map widget downloads: GET /v1/merchants?bbox=… for a 1280x800 viewport at zoom
10, 14 and 17 over the synthetic city, clustered and not.

    .venv/bin/python benchmarks/map_viewport.py                      # 1,000,000 merchants, SQLite
    .venv/bin/python benchmarks/map_viewport.py --merchants 100000

The city comes from `lbs seed synthetic` (bulk path, merchants only) into a scratch
database the benchmark owns; the app is built on it in-process and queried through its
test client (the whole request: validation, index, database reads, JSON). For each zoom
it prints the response size and latency of the clustered view, and, as the peer from the
same run, of what listing every merchant in the view would cost (total x the mean size
of a feature of a listed page), with the ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from datetime import UTC, datetime

from flask.testing import FlaskClient
from scratch_database import reset_database
from sqlalchemy.orm import Session

from lbs.app import create_app
from lbs.db import BEGIN_IMMEDIATE, make_engine
from seed import loader

MARKER = "lbs_bench_map_marker"
CENTRE = (60.1699, 24.9384)
WIDTH, HEIGHT = 1280, 800


def viewport(lat: float, lon: float, zoom: int) -> str:
    """minLon,minLat,maxLon,maxLat of a WIDTH x HEIGHT web-mercator view centred there."""
    world = 256 * 2**zoom
    x = (lon + 180) / 360 * world
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * world

    def lat_of(py: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / world))))

    min_lon = (x - WIDTH / 2) / world * 360 - 180
    max_lon = (x + WIDTH / 2) / world * 360 - 180
    edges = (max(min_lon, -180), lat_of(y + HEIGHT / 2), min(max_lon, 180), lat_of(y - HEIGHT / 2))
    return ",".join(f"{v:.6f}" for v in edges)


def timed(client: FlaskClient, query: dict[str, object], runs: int) -> tuple[bytes, float]:
    times, body = [], b""
    client.get("/v1/merchants", query_string=query)  # warm: first-use caches are not the point
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get("/v1/merchants", query_string=query)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        body = response.get_data()
    return body, statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="sqlite:////tmp/lbs_bench_map.sqlite3")
    parser.add_argument("--merchants", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    reset_database(args.database_url, MARKER)
    engine = make_engine(args.database_url)
    started = time.perf_counter()
    with Session(engine) as session:
        session.connection(execution_options={BEGIN_IMMEDIATE: True})
        loader.load(
            session, loader.Spec(args.merchants, 0, 1, args.seed), datetime.now(UTC), b"", lambda _: None
        )
        session.commit()
    engine.dispose()
    print(f"{args.merchants:,} merchants loaded in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    app = create_app(test_config={"database_url": args.database_url, "index_refresh_s": 3600.0})
    client = app.test_client()
    print(f"app with its index built in {time.perf_counter() - started:.1f} s")

    print(
        "| zoom | view (bbox) | merchants in view | clusters | clustered: bytes, ms "
        "| every merchant listed (peer): bytes, ms per page of 100 | ratio (bytes) |"
    )
    print("| ---: | --- | ---: | ---: | --- | --- | ---: |")
    for zoom in (10, 14, 17):
        box = viewport(*CENTRE, zoom)
        clustered, cluster_ms = timed(client, {"bbox": box, "cluster": "true", "zoom": zoom}, args.runs)
        page, page_ms = timed(client, {"bbox": box, "limit": 100}, args.runs)
        listed = json.loads(page)
        total = listed["total"]
        per_feature = len(page) / max(1, len(listed["features"]))
        every = total * per_feature
        n_clusters = len(json.loads(clustered)["features"])
        print(
            f"| {zoom} | {box} | {total:,} | {n_clusters:,} | {len(clustered):,} B, {cluster_ms:.1f} ms | "
            f"~{every:,.0f} B, {page_ms:.1f} ms | {every / len(clustered):,.1f}x |"
        )


if __name__ == "__main__":
    main()
