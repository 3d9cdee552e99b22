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

The peer of http_load.py (one worker, its threads) is measured the same way on the same
positions first: its worker's CPU and its PostgreSQL backends' together are what a plain
query costs. lbs's `/healthz` is measured as the floor every lbs request pays (gunicorn,
Flask, lbs's request hooks) before it does any work. When both run out of the same cores,
the ratio of their throughputs tends to the inverse ratio of these totals: the last
column, the CPU-bound ratio.

Like http_load.py it gives 1,000 users with history fresh tokens (UPDATE of their
token_sha256), so it refuses to run while http_load.py runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
from http_city import database_name, lbs_command, prepare_city
from http_load import CASES, DEFAULT_URL, PEER_DIR, PEER_QUERY, peer_server
from http_servers import Server, drain, free_port, running
from http_wrk import Load, Wrk, requests_file, run_wrk

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


@dataclass(frozen=True)
class Cost:
    run: Wrk
    worker_ms: float  # CPU per answered request
    db_ms: float

    @property
    def total_ms(self) -> float:
        return self.worker_ms + self.db_ms


def cpu_per_request(server: Server, file: Path, args: argparse.Namespace, database_port: int) -> Cost:
    """A warm-up, then a measured run; the server's workers' and their backends' CPU per answer."""
    load = Load(args.connections, timeout_s=10, close=False)
    run_wrk(server.port, file, args.warmup, load)
    workers = [psutil.Process(p) for p in worker_pids(server)]
    worker_before = cpu_seconds(workers)
    db_before = cpu_seconds(backends_of(worker_pids(server), database_port))
    run = run_wrk(server.port, file, args.duration, load)
    worker_after = cpu_seconds(workers)
    db_after = cpu_seconds(backends_of(worker_pids(server), database_port))
    drain(server)
    answered = max(run.requests, 1)
    return Cost(run, used_ms(worker_before, worker_after) / answered, used_ms(db_before, db_after) / answered)


def row(label: str, cost: Cost, peer: Cost | None) -> str:
    versus = "—" if peer is None else f"{peer.total_ms / cost.total_ms:.2f}"
    cells = (
        label, f"{cost.run.per_s:,.0f}", f"{cost.run.p50_ms:,.0f} / {cost.run.p99_ms:,.0f}", cost.run.errors,
        f"{cost.worker_ms:.2f}", f"{cost.db_ms:.2f}", f"{cost.total_ms:.2f}", f"{1000 / cost.total_ms:,.0f}",
        versus,
    )  # fmt: skip
    return "| " + " | ".join(str(c) for c in cells) + " |"


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
    cases = [c for c in CASES if c.name in wanted and "{view}" not in c.query]
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

    def fill(query: str, radius_m: int | None = None) -> list[str]:
        return [
            query.format(lat=f"{lat:.6f}", lon=f"{lon:.6f}", r=radius_m, bbox=city.bbox)
            for lat, lon in city.positions
        ]

    rows = []
    peers: dict[int, Cost] = {}
    with tempfile.TemporaryDirectory(prefix="lbs-per-core-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        peer_command, peer_env = peer_server(args.database_url, 1, port)
        with running("peer", peer_command, PEER_DIR, peer_env, port, "/healthz", tmp / "peer.log") as peer:
            for radius_m in sorted({c.radius_m for c in cases if c.radius_m}):
                file = requests_file(tmp, f"peer-{radius_m}", fill(PEER_QUERY, radius_m))
                peers[radius_m] = cpu_per_request(peer, file, args, database_port)
                rows.append(row(f"*peer, {radius_m // 1000} km*", peers[radius_m], None))
                print(rows[-1], flush=True)
        port = free_port()
        command = lbs_command("serve", "--workers", "1", "--bind", f"127.0.0.1:{port}")
        with running("lbs", command, tmp, env, port, "/readyz", tmp / "lbs.log") as lbs:
            file = requests_file(tmp, "floor", ["/healthz"])
            floor = cpu_per_request(lbs, file, args, database_port)
            rows.append(row("*lbs `/healthz`* (the floor)", floor, None))
            print(rows[-1], flush=True)
            for case in cases:
                tokens = city.tokens if case.personalised else ()
                file = requests_file(tmp, case.name, fill(case.query), tokens)
                cost = cpu_per_request(lbs, file, args, database_port)
                rows.append(row(case.label, cost, peers.get(case.radius_m or 0)))
                print(rows[-1], flush=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{city.merchants:,} merchants ({database_name(args.database_url)}); 1 worker each, wrk "
          f"{args.connections} connections, {args.duration} s measured after {args.warmup} s; "
          f"load {load}\n")  # fmt: skip
    print(
        "| case | req/s (wall) | p50 / p99 ms | non-2xx / socket / timeouts | worker CPU ms per request "
        "| PostgreSQL CPU ms per request | both | requests per core-second | CPU-bound ÷ peer |"
    )
    print("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
