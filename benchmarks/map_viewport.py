"""What a map widget downloads: GET /v1/merchants?bbox=… for a 1280x800 viewport at zoom
10, 14 and 17 over the synthetic city, clustered and not; and, with --clusters, what
clustering a whole city costs.

    .venv/bin/python benchmarks/map_viewport.py                      # 1,000,000 merchants, SQLite
    .venv/bin/python benchmarks/map_viewport.py --merchants 100000
    .venv/bin/python benchmarks/map_viewport.py --clusters           # 1,000,000 random points
    .venv/bin/python benchmarks/map_viewport.py --clusters \
        --from-database postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench \
        --url http://127.0.0.1:8000                                  # and through `lbs serve`

The city comes from `lbs seed synthetic` (bulk path, merchants only) into a scratch
database the benchmark owns; the app is built on it in-process and queried through its
test client (the whole request: validation, index, database reads, JSON). For each zoom
it prints the response size and latency of the clustered view, and, as the peer from the
same run, of what listing every merchant in the view would cost (total x the mean size
of a feature of a listed page), with the ratio.

--clusters builds the nearby index over every active merchant of an existing database
(read only) or over random points around eight centres, and clusters the whole city at
zoom 10 and 14 both ways in the same run: merchant by merchant (the path before per-cell
totals, still taken for has_deal and open_now) and from the index's per-cell totals,
checking that they agree. The merchants with deals are the database's (or one in eight).
With --url it also drives that server's GET /v1/merchants?cluster=true with wrk (give
two, say a build before and after a change, to compare them in one run).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

import numpy as np
from flask.testing import FlaskClient
from scratch_database import reset_database
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.app import create_app
from lbs.categories import CATEGORY_CODES, N_CATEGORIES
from lbs.db import BEGIN_IMMEDIATE, IN_CHUNK, make_engine
from lbs.geo.h3clusters import Clusters, cluster_resolution, clusters
from lbs.geo.h3index import Box, NearbyIndex
from lbs.models import Merchant
from lbs.services.deal_offers import merchants_with_deals
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


def city_from_database(url: str) -> tuple[NearbyIndex, np.ndarray, float]:
    """The index over every active merchant (as LiveIndex.load builds it), the merchants with
    a deal begun and not over now (sorted), and the seconds that deal query took."""
    engine = make_engine(url)
    with Session(engine) as session:
        rows = session.execute(
            select(Merchant.id, Merchant.lat, Merchant.lon, Merchant.category).where(
                Merchant.status == "active"
            )
        ).all()
        started = time.perf_counter()
        every = range(IN_CHUNK + 1)  # longer than IN_CHUNK: every merchant with such a deal
        dealers = merchants_with_deals(session, datetime.now(UTC), every, started=True)
        deal_s = time.perf_counter() - started
    engine.dispose()
    index = NearbyIndex(
        N_CATEGORIES,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [CATEGORY_CODES[r[3]] for r in rows],
    )
    return index, np.unique(np.array(dealers, dtype=np.int64)), deal_s


def random_city(n: int, seed: int) -> tuple[NearbyIndex, np.ndarray, float]:
    """n points around eight centres within ~30 km of CENTRE; one merchant in eight has a deal."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 0.1, (8, 2)) + CENTRE
    around = rng.integers(0, 8, n)
    lats = centres[around, 0] + rng.normal(0.0, 0.03, n)
    lngs = centres[around, 1] + rng.normal(0.0, 0.06, n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    index = NearbyIndex(N_CATEGORIES, ids, lats, lngs, rng.integers(0, N_CATEGORIES, n))
    return index, np.sort(rng.choice(ids, n // 8, replace=False)), 0.0


def median_ms(work: Callable[[], Clusters], runs: int) -> tuple[Clusters, float]:
    times, found = [], work()
    for _ in range(runs):
        started = time.perf_counter()
        found = work()
        times.append(time.perf_counter() - started)
    return found, statistics.median(times) * 1000


def wrk(url: str, seconds: int) -> str:
    """wrk's summary line: req/s, p50 / p99 and errors over one URL at 8 connections."""
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", url], capture_output=True, text=True, check=True
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = re.search(r"Socket errors: (.*)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (
        f"{float(rate.group(1)) if rate else 0:.1f} req/s, p50 {p50.group(1) if p50 else '-'}, "
        f"p99 {p99.group(1) if p99 else '-'}, errors: {errors.group(1) if errors else 'none'}"
        + (f", non-2xx {non_2xx.group(1)}" if non_2xx else "")
    )


def compare_cluster_paths(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.from_database:
        index, dealers, deal_s = city_from_database(args.from_database)
        source = "the database's merchants"
    else:
        index, dealers, deal_s = random_city(args.merchants, args.seed)
        source = "random points"
    build_s = time.perf_counter() - started
    lat, lng = index._lat, index._lng
    # Every merchant inside, with edges a URL can carry (6 decimals, rounded outwards).
    city = Box(
        math.floor(lng.min() * 1e6) / 1e6,
        math.floor(lat.min() * 1e6) / 1e6,
        math.ceil(lng.max() * 1e6) / 1e6,
        math.ceil(lat.max() * 1e6) / 1e6,
    )
    print(f"{index.size:,} merchants ({source}), {len(dealers):,} with a deal; index in {build_s:.1f} s")
    if args.from_database:
        print(f"the merchants with a deal, from the database (merchants_with_deals): {deal_s * 1000:.0f} ms")
    bbox = ",".join(f"{v:.6f}" for v in (city.min_lng, city.min_lat, city.max_lng, city.max_lat))
    print(f"whole city: bbox={bbox}")
    print(
        "| zoom | resolution | clusters | totals built (once) | merchant by merchant: ms, per s "
        "| from cell totals: ms, per s | ratio |"
    )
    print("| ---: | ---: | ---: | ---: | --- | --- | ---: |")
    for zoom in (10, 14):
        resolution = cluster_resolution(zoom, index.resolutions[-1])
        started = time.perf_counter()
        index._totals_at(resolution, by_category=False)
        totals_ms = (time.perf_counter() - started) * 1000
        old, old_ms = median_ms(
            lambda r=resolution: clusters(index.in_box(city, None, by_id=False), r, dealers), args.runs
        )
        new, new_ms = median_ms(lambda r=resolution: index.clusters(city, r, None, dealers), args.runs)
        for field in ("cells", "counts", "marked"):
            assert np.array_equal(getattr(old, field), getattr(new, field)), field
        print(
            f"| {zoom} | {resolution} | {len(new.cells):,} | {totals_ms:.0f} ms | {old_ms:.1f} ms, "
            f"{1000 / old_ms:.1f}/s | {new_ms:.1f} ms, {1000 / new_ms:.1f}/s | {old_ms / new_ms:.1f}x |"
        )
    for server in args.url or []:
        print(f"\nthrough {server} (wrk -t1 -c8 -d{args.wrk_seconds}s, after 8 warm-up requests at once):")
        for zoom in (10, 14):
            url = f"{server}/v1/merchants?" + urlencode({"bbox": bbox, "cluster": "true", "zoom": zoom})
            # At once, so that every worker has loaded its index before the clock starts.
            warm = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", "-m", "300", url]) for _ in range(8)]
            failed = sum(w.wait() != 0 for w in warm)
            print(
                f"zoom {zoom}: {wrk(url, args.wrk_seconds)}"
                + (f" ({failed} warm-up failed)" if failed else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="sqlite:////tmp/lbs_bench_map.sqlite3")
    parser.add_argument("--merchants", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clusters", action="store_true", help="compare the two cluster paths")
    parser.add_argument("--from-database", help="with --clusters: read this city instead of random points")
    parser.add_argument(
        "--url", action="append", help="with --clusters: also drive this server with wrk (repeatable)"
    )
    parser.add_argument("--wrk-seconds", type=int, default=10)
    args = parser.parse_args()
    if args.clusters:
        compare_cluster_paths(args)
        return

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
