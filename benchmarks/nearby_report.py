"""The Markdown report of benchmarks/nearby.py: results table, targets, machine and notes."""

from __future__ import annotations

import os
import platform
from typing import Any

import h3
import numpy as np
import psycopg
from run_report import cpu_model

TARGET_RATIO = 2.0
TARGET_BUILD_S = 30.0
TARGET_RSS_MB = 300.0
MB = 1024 * 1024

LABELS = {
    "ours": "ours (H3 index)",
    "postgis_knn": "PostGIS KNN",
    "postgis_sorted": "PostGIS, ORDER BY distance, id (planner's choice)",
    "numpy": "numpy brute force",
    "http": "ours, full page over HTTP",
}


def machine() -> dict[str, str]:
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "CPU": cpu_model(),
        "RAM": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "Python": platform.python_version(),
        "numpy": np.__version__,
        "h3": h3.__version__,
        "psycopg": psycopg.__version__,
    }


def server_info(conninfo: str) -> dict[str, str]:
    with psycopg.connect(conninfo) as conn:

        def one(sql: str) -> str:
            row = conn.execute(sql).fetchone()
            return str(row[0]) if row else "?"

        return {
            "PostgreSQL": one("SHOW server_version").split()[0],
            "PostGIS": one("SELECT postgis_lib_version()"),
            "shared_buffers": one("SHOW shared_buffers"),
        }


def _verdict(ok: bool, text: str) -> str:
    return ("met" if ok else "**missed**") + f" ({text})"


def _results_table(results: dict[float, dict[str, Any]]) -> list[str]:
    rows = [
        "| radius | engine | queries | QPS | p50 ms | p99 ms | ours ÷ engine QPS | same ids as the oracle |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for radius, r in results.items():
        ours_qps = r["runs"]["ours"].qps
        for name, run in r["runs"].items():
            agree = r["agree"].get(name)
            if agree is None:
                same = "is the oracle"
            else:
                same = f"{agree.exact} exact, {agree.ties} tie-swapped, {agree.differ} differ"
                same += " (oracle: ours)" if name == "http" else ""
            ratio = "—" if name in ("ours", "http") else f"{ours_qps / run.qps:.2f}x"
            rows.append(
                f"| {radius / 1000:.0f} km | {LABELS[name]} | {len(run.seconds)} | {run.qps:,.0f} "
                f"| {run.percentile_ms(50):.3f} | {run.percentile_ms(99):.3f} | {ratio} | {same} |"
            )
    return rows


def _targets_table(facts: dict[str, Any], results: dict[float, dict[str, Any]]) -> list[str]:
    rows = ["| target | measured | verdict |", "| --- | --- | --- |"]
    for radius, r in results.items():
        runs = r["runs"]
        ratio = runs["ours"].qps / runs["postgis_knn"].qps
        best = max(run.qps for name, run in runs.items() if name.startswith("postgis"))
        rows.append(
            f"| ours ≥ {TARGET_RATIO:.0f}x PostGIS KNN QPS at {radius / 1000:.0f} km | {ratio:.2f}x "
            f"({runs['ours'].qps / best:.2f}x the faster PostGIS variant) | "
            + _verdict(ratio >= TARGET_RATIO, f"{(ratio / TARGET_RATIO - 1) * 100:+.0f}% vs the target")
            + " |"
        )
    differ = sum(a.differ for r in results.values() for a in r["agree"].values())
    totals = sum(r["total_mismatches"] for r in results.values())
    rows.append(
        f"| identical results: ids, order, totals | {differ} id-list and {totals} total differences | "
        + _verdict(differ == 0 and totals == 0, "ties within 1e-6 m may swap")
        + " |"
    )
    build_s = facts["build_s"]
    rows.append(
        f"| index build from the database ≤ {TARGET_BUILD_S:.0f} s | {build_s:.1f} s | "
        + _verdict(
            build_s <= TARGET_BUILD_S,
            f"{TARGET_BUILD_S - build_s:.1f} s to spare"
            if build_s <= TARGET_BUILD_S
            else f"{build_s - TARGET_BUILD_S:.1f} s over",
        )
        + " |"
    )
    w = facts["worker"]
    for what, mb in (("RSS after start", w["rss"] / MB), ("peak RSS (`VmHWM`)", w["peak"] / MB)):
        spare = TARGET_RSS_MB - mb
        rows.append(
            f"| ≤ {TARGET_RSS_MB:.0f} MB per process: {what} | {mb:.0f} MB | "
            + _verdict(spare >= 0, f"{abs(spare):.0f} MB " + ("to spare" if spare >= 0 else "over"))
            + " |"
        )
    return rows


def _notes(facts: dict[str, Any], results: dict[float, dict[str, Any]]) -> list[str]:
    args, data, w = facts["args"], facts["dataset"], facts["worker"]
    mean_totals = ", ".join(f"{r['mean_total']:,.0f} at {rad / 1000:.0f} km" for rad, r in results.items())
    ties = sum(a.ties for r in results.values() for a in r["agree"].values())
    loaded = "reused from an earlier run, which loaded it" if data.reused else "loaded"
    knn_counts = facts["plans"]["postgis_knn"][0]
    knn_plans = "EXPLAIN: KNN index scan in " + ", ".join(
        f"{k}/{facts['plan_checks']} plans at {radius / 1000:.0f} km" for radius, k in knn_counts.items()
    )
    notes = [
        f"Data: {args.merchants:,} merchants from `seed.synthetic.generate_city` (seed {args.seed}: 8 "
        "Gaussian centres plus 15% uniform, ~60x60 km around Helsinki), "
        f"{loaded} through `seed.synthetic.seed_city` (the merchant service's `import_merchants`, one "
        f"transaction) in {data.load_s:,.0f} s ({args.merchants / data.load_s:,.0f} rows/s), then "
        f"`VACUUM ANALYZE merchants` in {data.vacuum_s:.0f} s.",
        f"Queries: {args.queries} points (seed [{args.seed}, 1]): 80% at a random merchant plus N(0, 300 m) "
        f"jitter, 20% uniform in the box; top {50}, nearest first. Mean merchants within the radius: "
        f"{mean_totals}. Single-threaded, one process, the same points for every engine. Each engine "
        "first answers warm-up queries (100; 20 for the slow ones); then "
        f"{args.rounds} rounds interleave ours, PostGIS KNN and numpy, and each keeps its fastest round "
        "(the machine is shared); the two slow rows run once.",
        "ours: `LiveIndex.query` (its lock, then `NearbyIndex.query`, which also computes the exact total) "
        "on the index a server worker builds: the `LiveIndex` of `create_app()` "
        f"({', '.join(f'{k}={v}' for k, v in facts['index_config'].items())}); the build time is a "
        "second `live.load(session)` on it.",
        "PostGIS: psycopg 3 with server-side binding, `prepare_threshold=None` (never a prepared, generic "
        "plan) and per session `plan_cache_mode = force_custom_plan`, `jit = off`, "
        "`max_parallel_workers_per_gather = 0`; both filter with `ST_DWithin(geog, q, r, false)` (sphere, "
        "radius 6,371,008.77 m, as ours). *KNN* is `... ORDER BY geog <-> q LIMIT 50` with "
        "`enable_sort = off`: PostgreSQL estimates ST_DWithin on geography at ~5 rows, so by itself it "
        "plans a bitmap scan plus a sort of every row in range; forced, it takes the GiST KNN scan "
        f"({knn_plans}); it cannot break exact-distance ties by id, which the comparison allows. "
        "*ORDER BY distance, id* is the planner's own choice for `... ORDER BY geog <-> q, id LIMIT 50`: "
        "PostgreSQL serves an ORDER BY from the distance operator only when it is the whole ORDER BY, "
        f"so this is always a range scan plus a sort ({args.sorted_queries} queries).",
        "numpy brute force: all active merchants' unit vectors in memory, chord² computed with the same "
        "operations as `lbs.geo.distance.chord2_to`, exact count, `argpartition` for the top 50. It is the "
        "oracle for ids, order and totals.",
        f"Same ids: ordered id lists compared per query; a list that differs counts as tie-swapped only when "
        f"the distances at every position agree within 1e-6 m ({ties} such lists). Our total equals the "
        "brute-force count in every query: "
        + ("yes." if all(r["total_mismatches"] == 0 for r in results.values()) else "**no**."),
        f"Full page: `GET /v1/nearby?lat=…&lon=…&radius_m=…&limit=50&sort=distance` through the Flask test "
        f"client ({args.http_queries} queries) on an app from `create_app()`: validation, the index refresh "
        "poll, the index query (limit 51), loading the 50 merchant rows from PostgreSQL, JSON.",
        f"Memory: a fresh process that only runs `create_app()` with `LBS_DATABASE_URL` set, as a gunicorn "
        f"worker does at start: {w['interpreter'] / MB:.0f} MB for the interpreter, "
        f"{w['imported'] / MB:.0f} MB after importing the app, {w['rss'] / MB:.0f} MB with the index of "
        f"{w['size']:,} merchants loaded (psutil RSS), peak {w['peak'] / MB:.0f} MB (`VmHWM`). Its own "
        f"build took {w['build_s']:.1f} s.",
        "Load average (1/5/15 min) at start {:.2f}/{:.2f}/{:.2f}, at end {:.2f}/{:.2f}/{:.2f}: the machine "
        "is shared, so other work may add noise, mostly to p99.".format(
            *facts["loadavg_start"], *facts["loadavg_end"]
        ),
    ]
    first = [d for r in results.values() for a in r["agree"].values() for d in a.first_differences]
    if first:
        notes.append("First differences: " + "; ".join(first))
    return notes


def render(facts: dict[str, Any], results: dict[float, dict[str, Any]]) -> str:
    env = ", ".join(f"{k} {v}" for k, v in {**machine(), **facts["server"]}.items())
    plans = [f"{LABELS[name]}:\n\n```\n{text}\n```" for name, (_, text) in facts["plans"].items()]
    profiles = [
        f"At {radius / 1000:.0f} km, {facts['args'].queries} queries, cProfile, by own time:\n\n"
        f"```\n{r['profile']}\n```"
        for radius, r in results.items()
    ]
    return "\n".join(
        [
            "# Nearby benchmark",
            "",
            "Written by `benchmarks/nearby.py`; rerun it rather than editing. From the repository root:",
            "",
            f"```\n{facts['command']}\n```",
            "",
            f"{facts['started_at']:%Y-%m-%d %H:%M} UTC, N = {facts['args'].merchants:,} merchants, "
            f"commit {facts['git']}. {env}.",
            "",
            *_results_table(results),
            "",
            "## Targets",
            "",
            *_targets_table(facts, results),
            "",
            "## Notes",
            "",
            *[f"- {n}" for n in _notes(facts, results)],
            "",
            "## PostGIS plans (first query, 5 km)",
            "",
            "\n\n".join(plans),
            "",
            "## Where our query time goes",
            "",
            "\n\n".join(profiles),
            "",
        ]
    )
