"""The HTTP stage of benchmarks/insights.py: the insights read through gunicorn under wrk, beside the peer.

What a merchant's dashboard feels: `lbs serve` (gunicorn, its default threads) answering
GET /v1/merchant/insights with the merchant's API key, and the peer app (benchmarks/peer/,
Flask + gunicorn with the same workers and a psycopg pool) answering the same question from
the raw events in one SQL statement (benchmarks/peer/insights_sql.py). Each is loaded by wrk
with the same number of connections (one merchant at a time, then several); the peer gets
a longer run, as its answers take seconds. Before the runs, one answer of each is compared bucket by bucket.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from http_servers import free_port, get, running
from http_wrk import Load, Wrk, requests_file, run_wrk

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "benchmarks" / "peer"
PEER_THREADS = 4
NUMBERS = ("users", "impressions", "clicks", "claims", "redemptions", "revenue_minor", "discount_minor")


@dataclass(frozen=True)
class HttpCase:
    by: str
    span: str
    first: date
    last: date

    def query(self) -> str:
        return urlencode({"from": self.first.isoformat(), "to": self.last.isoformat(), "by": self.by})


@dataclass(frozen=True)
class HttpResult:
    case: HttpCase
    connections: int
    ours: Wrk
    peer: Wrk
    same: str


def _servers(database_url: str, workers: int, directory: Path) -> tuple[list[str], list[str], dict[str, str]]:
    lbs_env = {
        **os.environ,
        "LBS_DATABASE_URL": database_url,
        "LBS_MODEL_DIR": str(directory / "lbs-models"),
        "LBS_SECRET_KEY_FILE": str(directory / "lbs-secret.key"),
        "LBS_LOG_LEVEL": "WARNING",
    }
    lbs_env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `lbs serve` makes its own
    lbs = [sys.executable, "-c", "import sys; from lbs.cli import main; sys.exit(main())",
           "serve", "--workers", str(workers)]  # fmt: skip
    peer = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(PEER_THREADS)]
    return lbs, peer, lbs_env


def _same(ours: bytes, theirs: bytes) -> str:
    """Whether every bucket lbs shows has the peer's numbers."""
    buckets = json.loads(ours)["buckets"]
    expected = {b["key"]: b["numbers"] for b in json.loads(theirs)["buckets"]}
    shown = [b for b in buckets if not b["suppressed"] and b["users"]]
    differ = [b["key"] for b in shown if [b[n] for n in NUMBERS] != expected.get(b["key"])]
    return "yes" if not differ else f"**{len(differ)} of {len(shown)} differ**"


def measure_http(
    database_url: str,
    merchant: int,
    key: str,
    cases: Sequence[HttpCase],
    *,
    workers: int,
    connections: Sequence[int],
    seconds: int,
    peer_seconds: int,
) -> list[HttpResult]:
    results = []
    with tempfile.TemporaryDirectory(prefix="lbs-bench-insights-") as tmp_name:
        tmp = Path(tmp_name)
        lbs_port, peer_port = free_port(), free_port()
        lbs_command, peer_command, lbs_env = _servers(database_url, workers, tmp)
        peer_env = {**os.environ, "PEER_DATABASE_URL": database_url, "PEER_POOL_SIZE": str(PEER_THREADS)}
        with (
            running("lbs", [*lbs_command, "--bind", f"127.0.0.1:{lbs_port}"], tmp, lbs_env, lbs_port,
                    "/readyz", tmp / "lbs.log") as lbs,
            running("peer", [*peer_command, "--bind", f"127.0.0.1:{peer_port}", "app:create_app()"],
                    PEER_DIR, peer_env, peer_port, "/healthz", tmp / "peer.log") as peer,
        ):  # fmt: skip
            for case in cases:
                ours_path = f"/v1/merchant/insights?{case.query()}"
                peer_path = f"/insights?merchant_id={merchant}&{case.query()}"
                status, ours_body = get(lbs.port, ours_path, {"Authorization": f"Bearer {key}"}, timeout=60)
                peer_status, peer_body = get(peer.port, peer_path, timeout=300)
                if status != 200 or peer_status != 200:
                    raise SystemExit(f"{case}: lbs {status}, peer {peer_status}\n{lbs.log_tail()}")
                name = f"{case.by}-{case.span.replace(' ', '')}"
                ours_file = requests_file(tmp, f"lbs-{name}", [ours_path], [key])
                peer_file = requests_file(tmp, f"peer-{name}", [peer_path])
                same = _same(ours_body, peer_body)
                for count in connections:
                    load = Load(connections=count, timeout_s=120, close=False)
                    run_wrk(lbs.port, ours_file, 3, load)  # warm-up: each worker's first answers
                    ours = run_wrk(lbs.port, ours_file, seconds, load)
                    theirs = run_wrk(peer.port, peer_file, peer_seconds, load)
                    results.append(HttpResult(case, count, ours, theirs, same))
                    print(
                        f"  {case.by} {case.span}, {count} connections: lbs {ours.per_s:.1f}/s p50 "
                        f"{ours.p50_ms:.0f} ms p99 {ours.p99_ms:.0f} ms; peer {theirs.per_s:.2f}/s p50 "
                        f"{theirs.p50_ms:.0f} ms",
                        flush=True,
                    )
    return results


def failed(run: Wrk) -> int:
    """Answers that were not 200, or never came."""
    return run.non_2xx + run.socket_errors + run.timeouts


def http_table(results: Sequence[HttpResult]) -> list[str]:
    lines = [
        "| by | range | connections | lbs req/s | lbs p50 ms | lbs p99 ms | peer req/s | peer p50 ms "
        "| peer p99 ms | peer ÷ lbs (p50) | failed lbs / peer | same numbers |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        ratio = r.peer.p50_ms / r.ours.p50_ms if r.ours.p50_ms else float("nan")
        lines.append(
            f"| {r.case.by} | {r.case.span} | {r.connections} | {r.ours.per_s:.1f} | {r.ours.p50_ms:.0f} "
            f"| {r.ours.p99_ms:.0f} "
            f"| {r.peer.per_s:.2f} | {r.peer.p50_ms:.0f} | {r.peer.p99_ms:.0f} | {ratio:.0f}x "
            f"| {failed(r.ours)} / {failed(r.peer)} | {r.same} |"
        )
    return lines
