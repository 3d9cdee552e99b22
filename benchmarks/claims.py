"""Claims benchmark: concurrent claims per second through real gunicorn workers and HTTP.

Run from the repository root:

    .venv/bin/python benchmarks/claims.py                       # PostgreSQL, lbs_bench_claims
    .venv/bin/python benchmarks/claims.py --database-url sqlite:////tmp/lbs_bench_claims.sqlite3

The database is dropped and re-migrated on every run (the script refuses to touch one it
did not make). gunicorn runs ``lbs.app:create_app()`` with sync workers on a free loopback
port; a bounded pool of client threads sends every request on a fresh connection.

- peers, measured in the same run through the same stack: ``POST /v1/users`` (a trivial
  one-row write; it also makes the users that claim) and ``GET /healthz`` (no database);
- A "hot": one deal of Q vouchers, N users each claiming it once: successful claims/s up to
  the last voucher, and requests/s over every claim (the late ones answer 409 sold_out);
- B "spread": D deals with ample stock, the same N users each claiming one at random.

At the end every deal is checked in the database: ``quantity_claimed <= quantity_total``
and ``count(vouchers) == quantity_claimed``, and the 201s equal the vouchers. Results go to
stdout and to this database kind's section of docs/benchmarks-claims.md.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from run_report import load_line, ratio, report_heading, run_facts, write_section
from scratch_database import reset_database
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.services.reconciliation import Books, check_books

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench_claims"
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks-claims.md"
# Packages whose versions the report states.
VERSIONS_OF = ("gunicorn", "SQLAlchemy", "psycopg")
MARKER_TABLE = "benchmark_claims"
START_TIMEOUT_S = 90.0
REQUEST_TIMEOUT_S = 60.0
SPOT = (60.1699, 24.9384)


# -- database -----------------------------------------------------------------------------


def check_database(engine: Engine) -> Books:
    """Every deal: claimed within its stock, one voucher per unit claimed, no user over its limit."""
    with Session(engine) as session:
        return check_books(session)


# -- server and client --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gunicorn:
    port: int
    process: subprocess.Popen[bytes]
    error_log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of the workers (and the arbiter) so far."""
        total = 0.0
        try:
            parent = psutil.Process(self.process.pid)
            for proc in [parent, *parent.children()]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
        return total


@contextmanager
def gunicorn(url: str, workers: int, operator_token: str, directory: Path) -> Iterator[Gunicorn]:
    port = free_port()
    error_log = directory / "gunicorn.log"
    env = {
        **os.environ,
        "LBS_DATABASE_URL": url,
        "LBS_OPERATOR_TOKEN_SHA256": hashlib.sha256(operator_token.encode()).hexdigest(),
        "LBS_SECRET_KEY": secrets.token_hex(32),
        "LBS_RATE_LIMIT_CLAIM": "1000000/minute",  # measure claims, not the limiter's refusals
        "LBS_RATE_LIMIT_NEW_USERS": "1000000/minute",  # thousands of users from one address
        "LBS_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}",
        "--error-logfile", str(error_log),
        "--graceful-timeout", "5",
        "lbs.app:create_app()",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = Gunicorn(port, process, error_log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while call(port, "GET", "/readyz").status != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                log = error_log.read_text()[-3000:] if error_log.exists() else ""
                raise SystemExit(f"gunicorn did not become ready (exit code {process.poll()}):\n{log}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


@dataclass(frozen=True)
class Reply:
    status: int  # 0: the connection failed
    body: bytes
    seconds: float
    finished: float  # time.perf_counter() at the end

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, body: object = None
) -> Reply:
    """One request on a fresh connection (sync workers close it after each response anyway)."""
    data = None if body is None else json.dumps(body).encode()
    sent = {"Connection": "close", **(headers or {})}
    if data is not None:
        sent["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    started = time.perf_counter()
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        status, payload = response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        status, payload = 0, repr(exc).encode()
    finally:
        conn.close()
    finished = time.perf_counter()
    return Reply(status, payload, finished - started, finished)


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    replies: list[Reply]
    planned: int
    elapsed_s: float
    client_cpu_s: float
    server_cpu_s: float
    started: float

    @property
    def truncated(self) -> bool:
        return len(self.replies) < self.planned

    def count(self, *statuses: int) -> int:
        return sum(r.status in statuses for r in self.replies)

    @property
    def statuses(self) -> Counter[int]:
        return Counter(r.status for r in self.replies)

    @property
    def requests_per_s(self) -> float:
        return len(self.replies) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile([r.seconds for r in self.replies], q) * 1e3) if self.replies else 0.0


def run_phase(
    name: str,
    jobs: Sequence[Callable[[], Reply]],
    threads: int,
    deadline: float,
    server: Gunicorn,
) -> Phase:
    """Run the jobs on a bounded pool of client threads; jobs not started by the deadline are skipped."""
    replies: list[Reply | None] = [None] * len(jobs)
    position = iter(range(len(jobs)))
    lock = threading.Lock()

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(position, None)
            if i is None:
                return
            replies[i] = jobs[i]()

    cpu_client, cpu_server = time.process_time(), server.cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(worker) for _ in range(threads)]:
            future.result()
    elapsed = time.perf_counter() - started
    done = [r for r in replies if r is not None]
    phase = Phase(
        name,
        done,
        len(jobs),
        elapsed,
        time.process_time() - cpu_client,
        server.cpu_seconds() - cpu_server,
        started,
    )
    note = f" (time limit: {len(done)} of {len(jobs)})" if phase.truncated else ""
    print(
        f"{name}: {len(done)} requests in {elapsed:.2f} s, {phase.requests_per_s:,.0f}/s, "
        f"statuses {dict(sorted(phase.statuses.items()))}{note}",
        flush=True,
    )
    return phase


def expect(reply: Reply, status: int, what: str) -> Any:
    if reply.status != status:
        raise SystemExit(f"{what}: {reply.status} {reply.body[:500]!r}")
    return reply.json()


@dataclass
class Scenario:
    phase: Phase
    claims: int  # 201s
    claims_per_s: float
    label: str
    deal_ids: list[int] = field(default_factory=list)


def new_deal(port: int, api_key: str, quantity: int, n: int) -> Callable[[], Reply]:
    now = datetime.now(UTC)
    body = {
        "title": f"Bench deal {n}",
        "kind": "percent_off",
        "currency": "EUR",
        "list_price_minor": 1500,
        "deal_price_minor": 900,
        "quantity_total": quantity,
        "per_user_limit": 1,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=1)).isoformat(),
        "publish": True,
    }
    return lambda: call(port, "POST", "/v1/merchant/deals", {"Authorization": f"Bearer {api_key}"}, body)


def claim_job(port: int, token: str, deal_id: int) -> Callable[[], Reply]:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    return lambda: call(port, "POST", f"/v1/deals/{deal_id}/claim", headers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL or sqlite:///FILE; reset")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--threads", type=int, default=32, help="client threads (requests in flight)")
    parser.add_argument("--quantity", type=int, default=2000, help="Q: vouchers of the hot deal")
    parser.add_argument("--users", type=int, default=3000, help="N: users, claims per scenario")
    parser.add_argument("--deals", type=int, default=200, help="D: deals of the spread scenario")
    parser.add_argument("--healthz", type=int, default=2000, help="GET /healthz requests (peer)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="Markdown file; '-' for none")
    args = parser.parse_args()
    if not 1 <= args.quantity <= 1_000_000 or args.users < 1 or args.deals < 1:
        parser.error("--quantity in 1..1,000,000; --users and --deals at least 1")

    began = time.monotonic()
    deadline = began + args.time_limit
    facts = run_facts("claims.py", args.database_url, args)
    kind = facts["kind"]
    print(f"resetting {make_url(args.database_url).render_as_string(hide_password=True)} ...", flush=True)
    reset_database(args.database_url, MARKER_TABLE)
    engine = make_engine(args.database_url)
    facts["database"] = database_info(engine)
    rng = random.Random(args.seed)
    operator_token = "lbs_op_" + secrets.token_urlsafe(24)
    operator = {"Authorization": f"Bearer {operator_token}"}

    with (
        tempfile.TemporaryDirectory(prefix="lbs-bench-claims-") as tmp,
        gunicorn(args.database_url, args.workers, operator_token, Path(tmp)) as server,
    ):
        port = server.port
        place = {"name": "Bench Ramen", "category": "restaurant", "lat": SPOT[0], "lon": SPOT[1]}
        merchant = expect(call(port, "POST", "/v1/merchants", operator, place), 201, "create merchant")
        key_reply = call(port, "POST", f"/v1/merchants/{merchant['id']}/api-keys", operator)
        api_key = expect(key_reply, 201, "issue API key")["api_key"]

        # Warm every worker (imports, connection pools) before anything is timed.
        def phase(name: str, jobs: Sequence[Callable[[], Reply]]) -> Phase:
            return run_phase(name, jobs, args.threads, deadline, server)

        def readyz() -> Reply:
            return call(port, "GET", "/readyz")

        def healthz() -> Reply:
            return call(port, "GET", "/healthz")

        def new_user() -> Reply:
            return call(port, "POST", "/v1/users")

        phase("warm-up", [readyz] * (20 * args.workers))
        healthz_before = phase("GET /healthz", [healthz] * args.healthz)
        users_phase = phase("POST /v1/users", [new_user] * args.users)
        tokens = [r.json()["token"] for r in users_phase.replies if r.status == 201]
        if not tokens:
            raise SystemExit(f"no users were created: {users_phase.statuses}")

        stock = args.users  # ample: no spread deal can sell out
        deal_jobs = [new_deal(port, api_key, args.quantity, 0)] + [
            new_deal(port, api_key, stock, n) for n in range(1, args.deals + 1)
        ]
        deals_phase = phase("create deals", deal_jobs)
        deal_ids = [expect(r, 201, "create deal")["id"] for r in deals_phase.replies]
        if len(deal_ids) < 2:
            raise SystemExit("the time limit ran out while creating deals")
        hot_id, spread_ids = deal_ids[0], deal_ids[1:]

        hot_users = tokens[:]
        rng.shuffle(hot_users)
        hot_phase = phase("A hot claims", [claim_job(port, t, hot_id) for t in hot_users])
        spread_jobs = [claim_job(port, t, rng.choice(spread_ids)) for t in tokens]
        spread_phase = phase("B spread claims", spread_jobs)
        healthz_after = phase("GET /healthz (again)", [healthz] * args.healthz)
        log_tail = server.error_log.read_text()[-2000:] if server.error_log.exists() else ""

    check = check_database(engine)
    engine.dispose()
    facts["loadavg_end"] = os.getloadavg()
    facts["total_s"] = time.monotonic() - began
    hot_wins = [r for r in hot_phase.replies if r.status == 201]
    # Successful claims per second: up to the response that took the last voucher.
    hot_span = (max(r.finished for r in hot_wins) - hot_phase.started) if hot_wins else 0.0
    spread_wins = spread_phase.count(201)
    scenarios = {
        "hot": Scenario(hot_phase, len(hot_wins), len(hot_wins) / hot_span if hot_span else 0.0, "A hot",
                        [hot_id]),
        "spread": Scenario(spread_phase, spread_wins,
                           spread_wins / spread_phase.elapsed_s if spread_phase.elapsed_s else 0.0,
                           "B spread", spread_ids),
    }  # fmt: skip
    consistency = {
        "hot 201s == hot vouchers": len(hot_wins) == check.vouchers_of.get(hot_id, -1),
        "spread 201s == spread vouchers": spread_wins == sum(check.vouchers_of.get(d, 0) for d in spread_ids),
        "hot sold exactly min(Q, claims sent)": len(hot_wins) == min(args.quantity, len(hot_phase.replies)),
    }
    facts["hot_span_s"] = hot_span
    facts["log_tail"] = log_tail
    doc = render(
        facts,
        peers={"users": users_phase, "healthz_before": healthz_before, "healthz_after": healthz_after},
        scenarios=scenarios,
        check=check,
        consistency=consistency,
    )
    print("\n" + doc)
    if args.output != "-":
        write_section(Path(args.output), HEADER, kind, doc)
        print(f"written to {args.output} (section {kind})")
    if check.oversold or check.mismatched or len(check.over_limit) or not all(consistency.values()):
        raise SystemExit("INCONSISTENT: see the check above")


# -- report -------------------------------------------------------------------------------


def database_info(engine: Engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            version = conn.execute(text("SELECT sqlite_version()")).scalar_one()
            mode = conn.execute(text("PRAGMA journal_mode")).scalar_one()
            sync = conn.execute(text("PRAGMA synchronous")).scalar_one()
            return f"SQLite {version}, journal_mode {mode}, synchronous {sync}, busy_timeout 30 s"

        def show(name: str) -> str:
            return str(conn.execute(text(f"SHOW {name}")).scalar_one())

        return (
            f"PostgreSQL {show('server_version').split()[0]}, max_connections {show('max_connections')}, "
            f"shared_buffers {show('shared_buffers')}, synchronous_commit {show('synchronous_commit')}, "
            f"fsync {show('fsync')}"
        )


def render(
    facts: dict[str, Any],
    peers: dict[str, Phase],
    scenarios: dict[str, Scenario],
    check: Books,
    consistency: dict[str, bool],
) -> str:
    args = facts["args"]
    users, h1, h2 = peers["users"], peers["healthz_before"], peers["healthz_after"]
    users_rps = users.requests_per_s
    measured = [h.requests_per_s for h in (h1, h2) if h.replies]
    healthz_rps = sum(measured) / len(measured) if measured else 0.0
    out = report_heading(facts, VERSIONS_OF)
    out[-1] += (
        f" gunicorn: {args['workers']} sync workers; client: {args['threads']} threads in this process, "
        "a fresh loopback connection per request."
    )
    out += [
        "",
        "| run | requests | 201 | 409 | other | seconds | requests/s | claims/s | p50 ms | p99 ms "
        "| claims/s ÷ users/s | claims/s ÷ healthz/s | client CPU s | server CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def row(label: str, phase: Phase, claims_per_s: float | None) -> str:
        other = len(phase.replies) - phase.count(200, 201, 409)
        claims = "—" if claims_per_s is None else f"{claims_per_s:,.0f}"
        r_users = "—" if claims_per_s is None else ratio(claims_per_s, users_rps)
        r_health = "—" if claims_per_s is None else ratio(claims_per_s, healthz_rps)
        cut = " (time limit)" if phase.truncated else ""
        return (
            f"| {label}{cut} | {len(phase.replies)} | {phase.count(201)} | {phase.count(409)} | {other} "
            f"| {phase.elapsed_s:.2f} | {phase.requests_per_s:,.0f} | {claims} "
            f"| {phase.percentile_ms(50):.1f} | {phase.percentile_ms(99):.1f} | {r_users} | {r_health} "
            f"| {phase.client_cpu_s:.1f} | {phase.server_cpu_s:.1f} |"
        )

    out.append(row("peer: `GET /healthz` (before)", h1, None))
    out.append(row("peer: `POST /v1/users`", users, None))
    hot, spread = scenarios["hot"], scenarios["spread"]
    hot_label = f"A hot: 1 deal of {args['quantity']}, {len(hot.phase.replies)} users claim once"
    out.append(row(hot_label, hot.phase, hot.claims_per_s))
    spread_label = f"B spread: {args['deals']} deals, ample stock, 1 random claim per user"
    out.append(row(spread_label, spread.phase, spread.claims_per_s))
    out.append(row("peer: `GET /healthz` (after)", h2, None))
    oversold = "none" if not check.oversold else f"**{len(check.oversold)}**: {check.oversold[:5]}"
    mismatched = "none" if not check.mismatched else f"**{len(check.mismatched)}**: {check.mismatched[:5]}"
    consistent = "; ".join(f"{name}: {'yes' if ok else '**no**'}" for name, ok in consistency.items())
    hot_rps_span = hot.claims / facts["hot_span_s"] if facts["hot_span_s"] else 0.0
    until = "until sold out" if hot.claims == args["quantity"] else "**not sold out** before the time limit"
    out += [
        "",
        f"- Peers: `POST /v1/users` {users_rps:,.0f}/s; `GET /healthz` {h1.requests_per_s:,.0f}/s before and "
        f"{h2.requests_per_s:,.0f}/s after the claims (the mean of those measured, {healthz_rps:,.0f}/s, "
        "is the divisor).",
        f"- A hot: {hot.claims} vouchers sold in {facts['hot_span_s']:.2f} s ({hot_rps_span:,.0f} successful "
        f"claims/s {until}); all {len(hot.phase.replies)} claims took {hot.phase.elapsed_s:.2f} s "
        f"({hot.phase.requests_per_s:,.0f} requests/s, the late ones 409 sold_out). "
        f"Statuses: {dict(sorted(hot.phase.statuses.items()))}.",
        f"- B spread: {spread.claims} vouchers over {args['deals']} deals in {spread.phase.elapsed_s:.2f} s. "
        f"Statuses: {dict(sorted(spread.phase.statuses.items()))}.",
        f"- Oversold check over all {check.deals} deals: `quantity_claimed > quantity_total`: {oversold}; "
        f"`count(vouchers) != quantity_claimed`: {mismatched}; users above `per_user_limit`: "
        f"{len(check.over_limit)}. {consistent}.",
        load_line(facts) + f"(limit {args['time_limit']:.0f} s).",
    ]
    errors = [line for line in facts["log_tail"].splitlines() if re.search(r"ERROR|Traceback|locked", line)]
    if errors:
        out += ["- gunicorn error log (last lines with ERROR):", "", "```", *errors[-10:], "```"]
    return "\n".join(out) + "\n"


HEADER = """# Claims benchmark

Written by `benchmarks/claims.py`; rerun it rather than editing. Each run replaces the
section of its database kind (PostgreSQL or SQLite) and keeps the other.

What is measured: claims per second through the whole stack — real gunicorn (sync workers,
`lbs.app:create_app()`), HTTP on loopback, a bounded pool of client threads in the
benchmark process, every request on a fresh connection. `LBS_RATE_LIMIT_CLAIM` is set to
1000000/minute so that the limiter never answers for the claim. The database is dropped
and re-migrated first.

- **peers**, measured in the same run through the same stack and client: `POST /v1/users`
  (one-row write plus a token hash: a trivial write) and `GET /healthz` (no database). The
  ratios `claims/s ÷ peer/s` say how much a claim costs beyond the HTTP + Flask +
  gunicorn floor, and stay comparable across machines better than raw numbers.
- **A hot**: one deal with Q vouchers, N users claiming it once each, in a shuffled
  order. Every claim locks the same `deals` row (PostgreSQL) or the database (SQLite), so
  claims of this deal run one at a time. *claims/s* is the vouchers sold divided by the
  time to the response that took the last voucher; *requests/s* counts every claim,
  including the cheaper 409 sold_out answers after it.
- **B spread**: D deals with ample stock; the same N users each claim one deal picked at
  random (seeded). On PostgreSQL claims of different deals do not wait on each other; on
  SQLite every write still takes the one database write lock (`BEGIN IMMEDIATE`).
- **check**: after the run, for every deal `quantity_claimed <= quantity_total` and
  `count(vouchers) == quantity_claimed`, no user above `per_user_limit`, and the 201
  responses equal the vouchers in the database.
- *client CPU s*: CPU time of the benchmark process (the HTTP client) during the run;
  *server CPU s*: of the gunicorn processes. On a small machine the client, the workers and
  the database share the cores, so the numbers are for comparing with the peers, not an
  absolute capacity.
"""


if __name__ == "__main__":
    main()
