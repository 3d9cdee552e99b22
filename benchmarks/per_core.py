"""Requests per core: the CPU one request costs lbs's worker and PostgreSQL, case by case.

    .venv/bin/python benchmarks/per_core.py                      # lbs_bench, /tmp/benchcity
    .venv/bin/python benchmarks/per_core.py --cases distance-1km --duration 10

One `lbs serve` worker (its LBS_THREADS threads) on the city of benchmarks/http_load.py;
wrk drives each case (http_load's cases and positions) for a warm-up, then a measured run.
Over the measured run the worker's CPU seconds, and those of the PostgreSQL backends
serving that worker's connections (matched by their client ports), are divided by the
requests answered: CPU milliseconds per request on each side and requests per second one
core sustains (1000 ÷ ms). On a shared machine wall-clock rates move with everyone else's
load; CPU per request moves much less, and is what carries over to sizing other hosts
(docs/scaling.md).

Like http_load.py it gives 1,000 users with history fresh tokens (UPDATE of their
token_sha256), so it refuses to run while http_load.py runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import psutil
from http_city import database_name, lbs_command, prepare_city
from http_load import CASES, DEFAULT_URL
from http_servers import Server, drain, free_port, running
from http_wrk import Load, requests_file, run_wrk

DEFAULT_CASES = "distance-1km,relevance-anon-1km,relevance-user-1km,has-deal-1km"


def worker_pids(server: Server) -> list[int]:
    return [p.pid for p in server.workers()]


def backends_of(pids: list[int], database_port: int) -> list[psutil.Process]:
    """The PostgreSQL backend processes serving these processes' connections."""
    ports = set()
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == database_port:
                ports.add(conn.laddr.port)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if line.startswith("postgres:") and any(f"({port})" in line for port in ports):
            found.append(proc)
    return found


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds by process id (a process that has gone is left out)."""
    found = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            found[proc.pid] = times.user + times.system
        except psutil.Error:
            pass
    return found


def used_ms(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU milliseconds between the two readings; a process that started in between counts whole."""
    return 1000 * sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def refuse_beside_http_load(url: str) -> None:
    """Both scripts re-token users of the city: one would break the other's tokens."""
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if not any(part.endswith("http_load.py") for part in argv):
            continue
        theirs = argv[argv.index("--database-url") + 1] if "--database-url" in argv[:-1] else DEFAULT_URL
        if theirs == url:
            raise SystemExit(f"benchmarks/http_load.py runs on {url} (pid {proc.pid}): wait for it")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--city-dir", default="/tmp/benchcity", help="its lbs-secret.key and lbs-models")
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--seed", type=int, default=16, help="of the positions and users drawn")
    args = parser.parse_args()
    refuse_beside_http_load(args.database_url)

    wanted = args.cases.split(",")
    cases = [c for c in CASES if c.name in wanted]
    city = prepare_city(args.database_url, args.seed)
    city_dir = Path(args.city_dir).resolve()
    env = {
        **os.environ,
        "LBS_DATABASE_URL": args.database_url,
        "LBS_MODEL_DIR": str(city_dir / "lbs-models"),
        "LBS_SECRET_KEY_FILE": str(city_dir / "lbs-secret.key"),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    database_port = int(args.database_url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    rows = []
    wrk_load = Load(args.connections, timeout_s=10, close=False)
    with tempfile.TemporaryDirectory(prefix="lbs-per-core-") as tmp:
        port = free_port()
        command = lbs_command("serve", "--workers", "1", "--bind", f"127.0.0.1:{port}")
        with running("lbs", command, Path(tmp), env, port, "/readyz", Path(tmp) / "lbs.log") as lbs:
            for case in cases:
                paths = [
                    case.query.replace("{lat}", f"{lat:.6f}")
                    .replace("{lon}", f"{lon:.6f}")
                    .replace("{bbox}", city.bbox)
                    for lat, lon in city.positions
                ]
                file = requests_file(Path(tmp), case.name, paths, city.tokens if case.personalised else ())
                run_wrk(lbs.port, file, args.warmup, wrk_load)
                workers = [psutil.Process(p) for p in worker_pids(lbs)]
                worker_before = cpu_seconds(workers)
                db_before = cpu_seconds(backends_of(worker_pids(lbs), database_port))
                run = run_wrk(lbs.port, file, args.duration, wrk_load)
                worker_after = cpu_seconds(workers)
                db_after = cpu_seconds(backends_of(worker_pids(lbs), database_port))
                drain(lbs)
                answered = max(run.requests, 1)
                worker_ms = used_ms(worker_before, worker_after) / answered
                db_ms = used_ms(db_before, db_after) / answered
                per_db_core = 1000 / db_ms if db_ms else float("inf")
                cells = (
                    case.label, f"{run.per_s:,.0f}", f"{run.p50_ms:,.0f} / {run.p99_ms:,.0f}", run.errors,
                    f"{worker_ms:.2f}", f"{1000 / worker_ms:,.0f}", f"{db_ms:.2f}", f"{per_db_core:,.0f}",
                )  # fmt: skip
                rows.append("| " + " | ".join(cells) + " |")
                print(rows[-1], flush=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{city.merchants:,} merchants ({database_name(args.database_url)}); 1 worker, wrk "
          f"{args.connections} connections, {args.duration} s measured after {args.warmup} s; "
          f"load {load}\n")  # fmt: skip
    print(
        "| case | req/s (wall) | p50 / p99 ms | non-2xx / socket / timeouts | worker CPU ms per request "
        "| requests per worker core-second | PostgreSQL CPU ms per request "
        "| requests per PostgreSQL core-second |"
    )
    print("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
