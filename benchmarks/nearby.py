"""Nearby benchmark: the in-process H3 index against PostGIS KNN and a numpy brute force.

Run from the repository root:

    .venv/bin/python benchmarks/nearby.py --merchants 1000000

The data set is a synthetic clustered city (seed.synthetic) loaded into PostgreSQL through
the merchant service; it is reused by later runs while it holds the same N and seed. The
numpy brute force is the oracle: every engine must return its ids, in its order, and our
total must equal its count. Results go to stdout and to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import json
import os
import pstats
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from nearby_report import render, server_info
from run_report import git_state
from scratch_database import libpq_url
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from lbs import migrate
from lbs.db import make_engine
from lbs.geo.distance import chord2_to_m, latlng_to_xyz, m_to_chord2, point_to_xyz
from lbs.services.live_index import LiveIndex
from seed.synthetic import generate_city, seed_city

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench"
LIMIT = 50
RADII_M = (1_000.0, 5_000.0)
TIE_M = 1e-6
MARKER_TABLE = "benchmark_dataset"
_POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"
_WITHIN = f"SELECT id FROM merchants WHERE status = 'active' AND ST_DWithin(geog, {_POINT}, %(r)s, false)"
# name -> (SQL, session settings beyond PG_SETTINGS). PostgreSQL estimates ST_DWithin on
# geography at a handful of rows, so left alone it plans even the pure KNN form as a bitmap
# scan plus a sort of every row in range; enable_sort = off makes it take the GiST KNN scan,
# which stops after LIMIT rows. It serves an ORDER BY from the distance operator only when
# the operator is the whole ORDER BY, so "<->, id" is always a range scan plus a sort.
POSTGIS = {
    "postgis_knn": (f"{_WITHIN} ORDER BY geog <-> {_POINT} LIMIT {LIMIT}", {"enable_sort": "off"}),
    "postgis_sorted": (f"{_WITHIN} ORDER BY geog <-> {_POINT}, id LIMIT {LIMIT}", {}),
}
# Per-session settings for a fair single-threaded OLTP comparison: custom plans (the
# generic-plan trap), no JIT (it compiles for hundreds of ms once a plan's cost is high),
# no parallel workers (every engine gets one core).
PG_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off", "max_parallel_workers_per_gather": "0"}
PLAN_CHECKS = 20
MB = 1024 * 1024

Engine = Callable[[float, float, float], tuple[list[int], int | None]]


# -- data ---------------------------------------------------------------------------------


@dataclass
class Dataset:
    reused: bool
    load_s: float
    vacuum_s: float


def prepare_dataset(url: str, n: int, seed: int, reload: bool) -> Dataset:
    """Reuse the database if it holds this N and seed, else (re)create and load it."""
    name = make_url(url).database
    assert name, "the database URL must name a database"
    with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists and not reload:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            listed = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            tables = {r[0] for r in listed}
            if MARKER_TABLE not in tables:
                if tables:
                    raise SystemExit(f"database {name} was not made by this benchmark; --reload replaces it")
            else:
                marker = conn.execute(
                    f"SELECT merchants, seed, load_s, vacuum_s FROM {MARKER_TABLE}"
                ).fetchone()
                count = conn.execute("SELECT count(*) FROM merchants").fetchone()
                if marker and count and (marker[0], marker[1]) == (n, seed) and count[0] == n:
                    print(f"reusing {name}: {n} merchants, seed {seed} (loaded in {marker[2]:.1f} s)")
                    return Dataset(True, float(marker[2]), float(marker[3]))
    with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    migrate.upgrade(engine)
    print(f"loading {n} merchants through seed.synthetic.seed_city ...", flush=True)
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        written = seed_city(session, n, datetime.now(UTC), seed=seed)
    load_s = time.perf_counter() - started
    engine.dispose()
    assert written == n, (written, n)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE merchants")
        vacuum_s = time.perf_counter() - started
        conn.execute(f"CREATE TABLE {MARKER_TABLE} (merchants int, seed int, load_s float8, vacuum_s float8)")
        conn.execute(f"INSERT INTO {MARKER_TABLE} VALUES (%s, %s, %s, %s)", (n, seed, load_s, vacuum_s))
    print(f"loaded in {load_s:.1f} s ({n / load_s:,.0f} rows/s), VACUUM ANALYZE {vacuum_s:.1f} s")
    return Dataset(False, load_s, vacuum_s)


def query_points(n_points: int, n_merchants: int, seed: int, stream: int) -> npt.NDArray[np.float64]:
    """(lat, lon) rows: 80% near random merchants (Gaussian jitter, sd 300 m), 20% uniform in the box."""
    city = generate_city(n_merchants, seed=seed)
    defaults = inspect.signature(generate_city).parameters
    lat0, lon0 = defaults["centre_lat"].default, defaults["centre_lon"].default
    half_km = defaults["size_km"].default / 2
    km_lat, km_lon = 1 / 110.574, 1 / (111.320 * np.cos(np.radians(lat0)))
    rng = np.random.default_rng([seed, stream])
    near = int(n_points * 0.8)
    pick = rng.integers(0, n_merchants, size=near)
    jitter = rng.normal(scale=0.3, size=(near, 2))
    uniform = rng.uniform(-half_km, half_km, size=(n_points - near, 2))
    lats = np.concatenate([city.lats[pick] + jitter[:, 1] * km_lat, lat0 + uniform[:, 1] * km_lat])
    lons = np.concatenate([city.lons[pick] + jitter[:, 0] * km_lon, lon0 + uniform[:, 0] * km_lon])
    order = rng.permutation(n_points)
    return np.stack([lats[order], lons[order]], axis=1)


# -- engines ------------------------------------------------------------------------------


class BruteForce:
    """Every active merchant's unit vector; chord² to the query, exact count, top LIMIT by (chord², id)."""

    def __init__(self, conninfo: str) -> None:
        with psycopg.connect(conninfo) as conn:
            sql = "SELECT id, lat, lon FROM merchants WHERE status = 'active' ORDER BY id"
            rows = conn.execute(sql).fetchall()
        arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
        self.ids = arr[:, 0].astype(np.int64)
        xyz = latlng_to_xyz(arr[:, 1], arr[:, 2])
        self.x, self.y, self.z = (np.ascontiguousarray(xyz[:, i]) for i in range(3))
        self._a, self._b = np.empty_like(self.x), np.empty_like(self.x)

    def chord2(self, point: tuple[float, float, float]) -> npt.NDArray[np.float64]:
        # Same operations, in the same order, as lbs.geo.distance.chord2_to: bit-identical.
        a, b = self._a, self._b
        np.subtract(self.x, point[0], out=a)
        np.multiply(a, a, out=a)
        np.subtract(self.y, point[1], out=b)
        np.multiply(b, b, out=b)
        np.add(a, b, out=a)
        np.subtract(self.z, point[2], out=b)
        np.multiply(b, b, out=b)
        np.add(a, b, out=a)
        return a

    def query(self, lat: float, lon: float, radius_m: float) -> tuple[list[int], int | None]:
        c2 = self.chord2(point_to_xyz(lat, lon))
        within = np.flatnonzero(c2 <= m_to_chord2(radius_m))
        total = len(within)
        cw = c2[within]
        if len(within) > LIMIT:
            top = np.argpartition(cw, LIMIT - 1)[:LIMIT]
            keep = cw <= cw[top].max()  # every tie at the cut, so ties break by id
            within, cw = within[keep], cw[keep]
        order = np.lexsort((self.ids[within], cw))[:LIMIT]
        return self.ids[within[order]].tolist(), total

    def distances_m(self, ids: Sequence[int], lat: float, lon: float) -> npt.NDArray[np.float64]:
        rows = np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))
        p = point_to_xyz(lat, lon)
        c2 = (self.x[rows] - p[0]) ** 2 + (self.y[rows] - p[1]) ** 2 + (self.z[rows] - p[2]) ** 2
        return np.asarray(chord2_to_m(c2))


def explain(
    conn: psycopg.Connection[Any], sql: str, lat: float, lon: float, radius_m: float
) -> tuple[bool, str]:
    """EXPLAIN of a PostGIS query: does it scan the GiST index ordered by distance (KNN)?"""
    params = {"lat": lat, "lon": lon, "r": radius_m}
    doc = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0]  # type: ignore[index]
    text = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())

    def walk(node: dict[str, Any]) -> bool:
        if node.get("Index Name") == "ix_merchants_geog" and "Order By" in node:
            return True
        return any(walk(child) for child in node.get("Plans", []))

    return walk(doc[0]["Plan"]), text


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Run:
    ids: list[list[int]] = field(default_factory=list)
    totals: list[int | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def qps(self) -> float:
        return len(self.seconds) / sum(self.seconds)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.seconds, q) * 1e3)


def run(engine: Engine, points: npt.NDArray[np.float64], radius_m: float) -> Run:
    out = Run()
    clock = time.perf_counter
    for lat, lon in points.tolist():
        started = clock()
        ids, total = engine(lat, lon, radius_m)
        out.seconds.append(clock() - started)
        out.ids.append(ids)
        out.totals.append(total)
    return out


@dataclass
class Agreement:
    exact: int = 0
    ties: int = 0
    differ: int = 0
    first_differences: list[str] = field(default_factory=list)


def agreement(
    got: Run, oracle: Run, brute: BruteForce, points: npt.NDArray[np.float64], radius_m: float
) -> Agreement:
    """Same ordered ids as the oracle; positions may swap ids only between results tied within TIE_M."""
    out = Agreement()
    for i, (a, b) in enumerate(zip(got.ids, oracle.ids[: len(got.ids)], strict=True)):
        if a == b:
            out.exact += 1
            continue
        lat, lon = points[i]
        tied = (
            len(a) == len(b)
            and len(set(a)) == len(a)
            and bool(np.all(np.abs(brute.distances_m(a, lat, lon) - brute.distances_m(b, lat, lon)) <= TIE_M))
        )
        if tied:
            out.ties += 1
        else:
            out.differ += 1
            if len(out.first_differences) < 3:
                out.first_differences.append(
                    f"r={radius_m:.0f} m, query {i} ({lat:.6f}, {lon:.6f}): {a[:4]}… vs {b[:4]}…"
                )
    return out


# Run with `python -c` in a fresh process, so that it imports only what a server worker does.
WORKER_SCRIPT = """
import json, psutil
me = psutil.Process()
interpreter = me.memory_info().rss
from lbs.app import create_app
imported = me.memory_info().rss
app = create_app()
live = app.extensions["lbs"].live_index
print(json.dumps({
    "interpreter": interpreter,
    "imported": imported,
    "rss": me.memory_info().rss,
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a worker forked from this (large)
    # benchmark process would report the parent's high-water mark as its own.
    "peak": next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")),
    "size": live.size,
    "build_s": live.build_seconds,
}))
"""


def measure_worker(url: str, expected_size: int) -> dict[str, Any]:
    env = {**os.environ, "LBS_DATABASE_URL": url, "LBS_LOG_LEVEL": "WARNING"}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker process failed:\n{proc.stderr}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["size"] != expected_size:
        raise SystemExit(f"worker loaded {out['size']} merchants, expected {expected_size}:\n{proc.stderr}")
    return out


def http_engine(app: Any) -> Engine:
    """GET /v1/nearby through the Flask test client: parsing, the index, hydrating rows, JSON."""
    client = app.test_client()

    def engine(lat: float, lon: float, radius_m: float) -> tuple[list[int], int | None]:
        params = {"lat": lat, "lon": lon, "radius_m": radius_m, "limit": LIMIT, "sort": "distance"}
        resp = client.get("/v1/nearby", query_string=params)
        if resp.status_code != 200:
            raise SystemExit(f"GET /v1/nearby {params} -> {resp.status_code}: {resp.get_data(as_text=True)}")
        body = resp.get_json()
        return [item["merchant"]["id"] for item in body["items"]], body["total"]

    return engine


def profile(engine: Engine, points: npt.NDArray[np.float64], radius_m: float, top: int = 12) -> str:
    """cProfile of one engine over the points: the functions with the most own time."""
    prof = cProfile.Profile()
    prof.enable()
    for lat, lon in points.tolist():
        engine(lat, lon, radius_m)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    header = next(i for i, line in enumerate(lines) if "ncalls" in line)
    total = next((line.strip() for line in lines if "function calls" in line), "")
    return "\n".join([total, *lines[header : header + top + 1]])


def connect_postgis(conninfo: str, settings: dict[str, str]) -> psycopg.Connection[Any]:
    # prepare_threshold=None: never server-side prepared, so never a generic plan.
    conn = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)
    for name, value in {**PG_SETTINGS, **settings}.items():
        conn.execute(f"SET {name} = {value}")
    return conn


def sql_engine(conn: psycopg.Connection[Any], sql: str) -> Engine:
    def engine(lat: float, lon: float, radius_m: float) -> tuple[list[int], int | None]:
        return [row[0] for row in conn.execute(sql, {"lat": lat, "lon": lon, "r": radius_m})], None

    return engine


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--merchants", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7, help="data and query RNG seed")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--sorted-queries",
        type=int,
        default=200,
        help="queries for the slow PostGIS variant ordered by (distance, id)",
    )
    parser.add_argument("--http-queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per engine; the best counts")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--reload", action="store_true", help="drop and reload the benchmark database")
    parser.add_argument(
        "--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file; '-' for none"
    )
    args = parser.parse_args(argv)
    if not (1 <= args.merchants <= 10_000_000 and 1 <= args.queries <= 100_000 and 1 <= args.rounds <= 20):
        parser.error("--merchants must be in 1..10,000,000, --queries in 1..100,000, --rounds in 1..20")
    args.sorted_queries = min(max(args.sorted_queries, 0), args.queries)
    args.http_queries = min(max(args.http_queries, 0), args.queries)
    facts: dict[str, Any] = {
        "command": shlex.join([".venv/bin/python", "benchmarks/nearby.py", *sys.argv[1:]]),
        "started_at": datetime.now(UTC),
        "loadavg_start": os.getloadavg(),
        "args": args,
    }
    conninfo = libpq_url(args.database_url)
    facts["dataset"] = prepare_dataset(args.database_url, args.merchants, args.seed, args.reload)

    # The index exactly as a server worker builds it: create_app() loads it once at start;
    # then the same LiveIndex.load(session) is timed on its own.
    from lbs.app import create_app

    app = create_app({"database_url": args.database_url, "log_level": "WARNING"})
    live: LiveIndex = app.extensions["lbs"].live_index
    with app.extensions["lbs"].sessions() as session:
        started = time.perf_counter()
        live.load(session)
        facts["build_s"] = time.perf_counter() - started
    facts["index_config"] = {
        k: v for k, v in vars(live).items() if k.startswith("resolution") or k == "refresh_s"
    }
    print(
        f"index build from the database: {facts['build_s']:.2f} s ({live.size:,} merchants, "
        f"{facts['index_config']})",
        flush=True,
    )
    facts["worker"] = worker = measure_worker(args.database_url, live.size)
    print(f"fresh worker: RSS {worker['rss'] / MB:.0f} MB, peak {worker['peak'] / MB:.0f} MB", flush=True)

    brute = BruteForce(conninfo)
    assert len(brute.ids) == live.size, (len(brute.ids), live.size)
    points = query_points(args.queries, args.merchants, args.seed, stream=1)
    warmup = query_points(100, args.merchants, args.seed, stream=2)
    pg = {name: connect_postgis(conninfo, settings) for name, (_, settings) in POSTGIS.items()}
    facts["plans"], facts["plan_checks"] = {}, PLAN_CHECKS
    for name, (sql, _) in POSTGIS.items():
        knn = {
            radius: sum(
                explain(pg[name], sql, lat, lon, radius)[0] for lat, lon in points[:PLAN_CHECKS].tolist()
            )
            for radius in RADII_M
        }
        text = explain(pg[name], sql, float(points[0, 0]), float(points[0, 1]), RADII_M[-1])[1]
        facts["plans"][name] = (knn, text)
        print(f"{name}: KNN index scan in {knn} of {PLAN_CHECKS} plans per radius\n{text}", flush=True)

    def ours(lat: float, lon: float, radius_m: float) -> tuple[list[int], int | None]:
        found = live.query(lat, lon, radius_m, LIMIT)
        return [h.id for h in found.hits], found.total

    # name: (engine, queries, warm-up queries, timed in every round); slow ones run once.
    engines: dict[str, tuple[Engine, int, int, bool]] = {
        "ours": (ours, args.queries, 100, True),
        "postgis_knn": (sql_engine(pg["postgis_knn"], POSTGIS["postgis_knn"][0]), args.queries, 100, True),
        "postgis_sorted": (
            sql_engine(pg["postgis_sorted"], POSTGIS["postgis_sorted"][0]),
            args.sorted_queries,
            20,
            False,
        ),
        "numpy": (brute.query, args.queries, 20, True),
        "http": (http_engine(app), args.http_queries, 20, False),
    }
    results: dict[float, dict[str, Any]] = {}
    for radius in RADII_M:
        for engine, n, n_warm, _ in engines.values():
            if n:
                run(engine, warmup[:n_warm], radius)
        # Rounds interleave the engines, and each keeps its best round, so that a burst of
        # other work on the machine does not land on one engine only.
        runs: dict[str, Run] = {}
        for round_no in range(args.rounds):
            for name, (engine, n, _, repeat) in engines.items():
                if n and (repeat or round_no == 0):
                    this = run(engine, points[:n], radius)
                    if name not in runs or this.qps > runs[name].qps:
                        runs[name] = this
        oracle = runs["numpy"]
        results[radius] = {
            "runs": runs,
            "agree": {
                name: agreement(r, runs["ours"] if name == "http" else oracle, brute, points, radius)
                for name, r in runs.items()
                if name != "numpy"
            },
            "total_mismatches": sum(a != b for a, b in zip(runs["ours"].totals, oracle.totals, strict=True)),
            "mean_total": sum(t or 0 for t in oracle.totals) / len(oracle.totals),
            "profile": profile(ours, points, radius),
        }
        summary = ", ".join(f"{k} {r.qps:,.0f} QPS" for k, r in runs.items())
        print(f"radius {radius:.0f} m: {summary}", flush=True)
    for conn in pg.values():
        conn.close()
    facts["loadavg_end"] = os.getloadavg()
    facts["server"] = server_info(conninfo)
    facts["git"] = git_state()

    doc = render(facts, results)
    print("\n" + doc)
    if args.output != "-":
        Path(args.output).write_text(doc)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
