"""Memory per gunicorn worker of `lbs serve` on a seeded city: RSS, PSS and USS of the master
and of the workers once ready, then after a round of sort=distance and of relevance requests
that every worker answers.

    .venv/bin/python benchmarks/serving_memory.py                  # lbs_bench, 2 workers
    .venv/bin/python benchmarks/serving_memory.py --source /tmp/lbs-before   # another checkout

RSS counts every page a process maps, shared or not; PSS divides each shared page among the
processes that map it, so the workers' PSS sums to what they really cost together: the honest
per-worker figure once the master's nearby index is shared copy-on-write. USS is what a worker
alone holds. ``--source`` imports lbs from another checkout (e.g. `git archive` of an older
commit into a directory), so that the same script measures before and after."""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench"
CENTRE = (60.1699, 24.9384)
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise SystemExit(f"lbs serve exited with {process.returncode}")
        try:
            if requests.get(base + "/readyz", timeout=timeout_s).status_code == 200:
                return time.monotonic() - started
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.5)
    raise SystemExit(f"not ready within {timeout_s} s")


def warm(base: str, query: str, n: int) -> dict[int, int]:
    """n nearby requests at random positions from 8 connections (so every worker answers some)."""
    rng = random.Random(7)
    paths = [
        f"/v1/nearby?lat={CENTRE[0] + rng.uniform(-0.2, 0.2):.5f}"
        f"&lon={CENTRE[1] + rng.uniform(-0.4, 0.4):.5f}&radius_m=1000{query}"
        for _ in range(n)
    ]

    def one(path: str) -> int:
        return requests.get(base + path, headers={"Connection": "close"}, timeout=60).status_code

    statuses: dict[int, int] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for status in pool.map(one, paths):
            statuses[status] = statuses.get(status, 0) + 1
    return statuses


def report(stage: str, master: psutil.Process) -> None:
    """One line for the master, one for the mean and the largest of the workers."""
    workers = [w.memory_full_info() for w in master.children()]
    own = master.memory_full_info()
    mean = [sum(getattr(w, f) for w in workers) / len(workers) / MB for f in ("rss", "pss", "uss")]
    top = [max(getattr(w, f) for w in workers) / MB for f in ("rss", "pss", "uss")]
    print(
        f"{stage:<22} {own.rss / MB:>7.0f} {own.pss / MB:>7.0f}   "
        + " ".join(f"{v:>7.0f}" for v in mean)
        + "   "
        + " ".join(f"{v:>7.0f}" for v in top)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--directory",
        type=Path,
        default=Path("/tmp/benchcity"),
        help="working directory: its lbs-secret.key and lbs-models are used",
    )
    parser.add_argument("--source", type=Path, default=REPO, help="checkout to import lbs from")
    parser.add_argument("--requests", type=int, default=200, help="per stage")
    parser.add_argument("--ready-timeout", type=float, default=900.0)
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(args.source.resolve()),
        "LBS_DATABASE_URL": args.database_url,
        "LBS_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-c", "from lbs.cli import main; main()", "serve",
               "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers)]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=args.directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        ready_s = wait_ready(base, process, args.ready_timeout)
        master = psutil.Process(process.pid)
        while len(master.children()) < args.workers:  # gunicorn forks them one after another
            time.sleep(0.1)
        print(f"source {args.source}, {len(master.children())} workers, ready after {ready_s:.0f} s; MB:")
        print(f"{'':<22} {'master':>15}   {'worker mean':>23}   {'largest worker':>23}")
        columns = " ".join(f"{c:>7}" for c in ("RSS", "PSS", "USS") * 2)
        print(f"{'after':<22} {'RSS':>7} {'PSS':>7}   {columns}")
        report("/readyz", master)
        for stage, query in (("sort=distance", "&sort=distance"), ("relevance", "")):
            statuses = warm(base, query, args.requests)
            report(f"{stage} {dict(sorted(statuses.items()))}", master)
    finally:
        process.terminate()
        process.wait(timeout=60)


if __name__ == "__main__":
    main()
