"""HTTP benchmark: what a user feels, lbs against a plain PostGIS peer, through gunicorn and wrk.

One command, from the repository root, against a city already in PostgreSQL:

    .venv/bin/python benchmarks/http_load.py                 # lbs_bench, every case, 2 workers
    .venv/bin/python benchmarks/http_load.py --cases distance-1km,relevance-user-1km --duration 10

Prerequisites: PostgreSQL + PostGIS on 127.0.0.1:5432 (`bash scripts/install-system-deps
postgis`), wrk (`bash scripts/install-system-deps wrk`), the venv with psycopg_pool
(`.venv/bin/pip install psycopg-pool`). The city: if `--database-url` holds no merchant yet,
the script makes it, as issue 15 measured it, in `--city-dir` (its secret key and models):

    LBS_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench \\
      lbs db upgrade && lbs seed synthetic --merchants 1000000 --users 100000 --days 30 && lbs train

(about 3 minutes to seed and 4 to train at that size; `--merchants`, `--users` change it).

What runs: `lbs serve --workers W` (gunicorn, its threads) and the peer in benchmarks/peer/
(Flask + gunicorn with the same workers, 4 threads + a psycopg_pool pool running one
`ST_DWithin ... ORDER BY geog <-> q LIMIT 20` on the same table), both on free loopback
ports, both stopped with SIGTERM at the end. wrk (1 thread, `--connections`, benchmarks/
http_rotate.lua) drives each case for `--warmup` seconds, then `--duration` measured ones,
rotating over 1,000 positions drawn (seeded) from the merchants' own positions; the peer is
measured at 1 and 5 km and divides every case of its radius. Between cases the script waits
until lbs answers /healthz promptly again, so that requests a timed-out client left behind
do not land on the next case.

Benchmark-only step: the users' tokens are unknown (only their SHA-256 is stored), so the
script picks 1,000 users with visits or redemptions in their history and gives each a
fresh token, by UPDATE of users.token_sha256 to the SHA-256 hex of the token (as
lbs.services.api_keys.sha256_hex hashes it). Those users' old tokens stop working: never
point this at a database whose users are real.

Events: impressions the personalised case should have made (items in the 200 responses wrk
saw) against those stored for the benchmark's users once lbs has stopped. Requests wrk sent
but saw no answer to (in flight when it stopped, or timed out) may have been logged too, so
the stored count must lie in [seen, seen + 20 x unanswered].

The "before" figures of docs/performance.md were taken from a git worktree of the old
commit: `git worktree add /tmp/lbs-baseline 5bae328`, then `--lbs-root /tmp/lbs-baseline
--label before --profile 20` (lbs, recommender and seed imported from there).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import http_profile
from http_city import POSITIONS, ensure_city, lbs_command, prepare_city, stored_impressions, views
from http_servers import Server, drain, free_port, get, memory, running
from http_wrk import Load, Wrk, finish_wrk, requests_file, run_wrk, start_wrk
from run_report import machine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench"
DEFAULT_OUTPUT = ROOT / "docs" / "performance.md"
PEER_DIR = ROOT / "benchmarks" / "peer"
THREADS = 2  # gunicorn threads per lbs worker, `lbs serve`'s default (LBS_THREADS)
# The peer keeps the 4 it had when lbs ran 4: its threads wait on PostgreSQL, and it is the
# better of 2 and 4 for it (with a worker holding most connections, 2 in flight are too few).
PEER_THREADS = 4
PAGE = 20  # results per page: lbs's default limit, the peer's LIMIT
VERSIONS_OF = ("gunicorn", "Flask", "SQLAlchemy", "psycopg", "psycopg-pool")


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    query: str  # lbs's path and query, {lat} {lon} filled per position
    radius_m: int | None = None  # the peer's radius that divides it; None: no peer
    personalised: bool = False


NEARBY = "/v1/nearby?lat={lat}&lon={lon}&radius_m={r}"
CASES = (
    Case("distance-1km", "`sort=distance`, 1 km", NEARBY.replace("{r}", "1000") + "&sort=distance", 1000),
    Case("distance-5km", "`sort=distance`, 5 km", NEARBY.replace("{r}", "5000") + "&sort=distance", 5000),
    Case("relevance-anon-1km", "relevance, anonymous, 1 km", NEARBY.replace("{r}", "1000"), 1000),
    Case("relevance-user-1km", "relevance, user token, 1 km", NEARBY.replace("{r}", "1000"), 1000, True),
    Case("has-deal-1km", "`has_deal=true`, 1 km", NEARBY.replace("{r}", "1000") + "&has_deal=true", 1000),
    Case("has-deal-5km", "`has_deal=true`, 5 km", NEARBY.replace("{r}", "5000") + "&has_deal=true", 5000),
    Case("deal-ending-1km", "`sort=deal_ending`, 1 km", NEARBY.replace("{r}", "1000") + "&sort=deal_ending",
         1000),
    Case("deal-ending-5km", "`sort=deal_ending`, 5 km", NEARBY.replace("{r}", "5000") + "&sort=deal_ending",
         5000),
    Case("clusters-z10", "clusters, whole city, zoom 10", "/v1/merchants?bbox={bbox}&cluster=true&zoom=10"),
    Case("clusters-z14", "clusters, whole city, zoom 14", "/v1/merchants?bbox={bbox}&cluster=true&zoom=14"),
    Case("clusters-z14-view", "clusters, 1280 x 800 px views at zoom 14 (20,000 boxes)",
         "/v1/merchants?bbox={view}&cluster=true&zoom=14"),
)  # fmt: skip
PEER_QUERY = "/nearby?lat={lat}&lon={lon}&radius_m={r}"


def peer_server(database_url: str, workers: int, port: int) -> tuple[list[str], dict[str, str]]:
    """The peer's gunicorn command (run in PEER_DIR) and its environment."""
    env = {**os.environ, "PEER_DATABASE_URL": database_url, "PEER_POOL_SIZE": str(PEER_THREADS)}
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(PEER_THREADS),
        "--bind", f"127.0.0.1:{port}", "app:create_app()",
    ]  # fmt: skip
    return command, env


@dataclass
class Measured:
    case: str
    label: str
    warmup: Wrk
    run: Wrk
    load_1min: float
    connections: dict[int, int]  # wrk's connections per worker, a few seconds into the run
    drain_s: float = 0.0
    extra: list[Wrk] = field(default_factory=list)  # unmeasured runs (the profile's): their events

    @property
    def all_runs(self) -> list[Wrk]:
        return [self.warmup, self.run, *self.extra]


def measure(server: Server, name: str, label: str, file: Path, args: argparse.Namespace) -> Measured:
    print(f"{name}: {args.warmup} s warm-up, {args.duration} s measured ...", flush=True)
    warm = run_wrk(server.port, file, args.warmup, args.load)
    process = start_wrk(server.port, file, args.duration, args.load)
    time.sleep(min(5.0, args.duration / 2))
    connections = server.connections()
    run = finish_wrk(process, args.duration + args.timeout + 120)
    result = Measured(name, label, warm, run, os.getloadavg()[0], connections)
    result.drain_s = drain(server)
    print(
        f"  {run.per_s:,.1f} req/s, p50 {run.p50_ms:,.0f} ms, p99 {run.p99_ms:,.0f} ms, non-2xx "
        f"{run.non_2xx}, socket errors {run.socket_errors}, timeouts {run.timeouts}; connections per "
        f"worker {list(connections.values())}; drained in {result.drain_s:.1f} s; "
        f"load {result.load_1min:.2f}",
        flush=True,
    )
    return result


# -- the run ------------------------------------------------------------------------------


def git_commit(root: Path, *paths: str) -> str:
    """The checkout's commit, and whether those paths of it had uncommitted changes."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True, timeout=30)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", *paths)
    changed = f" with uncommitted changes in {', '.join(p + '/' for p in paths)}" if dirty else ""
    return git("rev-parse", "--short", "HEAD") + changed


def lbs_env(args: argparse.Namespace) -> dict[str, str]:
    city = Path(args.city_dir).resolve()
    env = {
        **os.environ,
        "LBS_DATABASE_URL": args.database_url,
        "LBS_MODEL_DIR": str(city / "lbs-models"),
        "LBS_SECRET_KEY_FILE": str(city / "lbs-secret.key"),
        "LBS_THREADS": str(THREADS),  # an older checkout's default may differ
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `lbs serve` makes its own
    if args.lbs_root:
        env["PYTHONPATH"] = str(Path(args.lbs_root).resolve())
    return env


def check_lbs_root(args: argparse.Namespace, env: dict[str, str]) -> Path:
    """The directory lbs is imported from in the servers' environment; --lbs-root must win."""
    done = subprocess.run(
        [sys.executable, "-c", "import lbs; print(lbs.__file__)"],
        cwd=args.city_dir, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    imported = Path(done.stdout.strip()).resolve().parent.parent
    if args.lbs_root and imported != Path(args.lbs_root).resolve():
        raise SystemExit(f"--lbs-root {args.lbs_root}: lbs is imported from {imported} instead")
    return imported


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL; seeded if empty")
    parser.add_argument("--city-dir", default=str(Path(tempfile.gettempdir()) / "lbs-bench-city"),
                        help="lbs's working directory: secret key, lbs-models/")  # fmt: skip
    parser.add_argument("--merchants", type=int, default=1_000_000, help="when seeding")
    parser.add_argument("--users", type=int, default=100_000, help="when seeding")
    parser.add_argument("--cases", default=",".join(c.name for c in CASES), help="comma-separated subset")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of lbs and of the peer")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--duration", type=int, default=30, help="measured seconds per case")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up seconds per case")
    parser.add_argument("--timeout", type=int, default=10, help="wrk's request timeout, seconds")
    parser.add_argument(
        "--close",
        action="store_true",
        help="a new connection per request (Connection: close); default: wrk's connections stay "
        "open, each with the worker that accepted it (the table says how they were spread)",
    )
    parser.add_argument("--seed", type=int, default=15, help="of the positions and users drawn")
    parser.add_argument("--lbs-root", default=None, help="a checkout to serve lbs from (PYTHONPATH)")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                        help="py-spy one lbs worker under the personalised case for this long")  # fmt: skip
    parser.add_argument("--label", default="latest", help="the section of --output this run replaces")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="Markdown page; '-' for none")
    args = parser.parse_args()
    known = {c.name for c in CASES}
    args.selected = [c for c in CASES if c.name in set(args.cases.split(","))]
    if unknown := set(args.cases.split(",")) - known:
        parser.error(f"--cases: unknown {sorted(unknown)}; known: {', '.join(sorted(known))}")
    args.load = Load(args.connections, args.timeout, close=args.close)
    if not re.fullmatch(r"[\w-]+", args.label):
        parser.error("--label: letters, digits, - and _")
    return args


def main() -> None:
    args = parse_args()
    began = time.monotonic()
    Path(args.city_dir).mkdir(parents=True, exist_ok=True)
    env = lbs_env(args)
    lbs_root = check_lbs_root(args, env)
    facts: dict[str, Any] = {
        "command": shlex.join([".venv/bin/python", "benchmarks/http_load.py", *sys.argv[1:]]),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "lbs": f"{lbs_root}, commit {git_commit(lbs_root, 'lbs', 'recommender', 'seed')}",
        "bench": git_commit(ROOT, "benchmarks"),
        "machine": machine(*VERSIONS_OF),
        "loadavg_start": os.getloadavg(),
        "args": args,
    }
    ensure_city(args, env)
    city = prepare_city(args.database_url, args.seed)
    print(f"city: {city.merchants:,} merchants, bbox {city.bbox}, {len(city.user_ids)} users with tokens")
    impressions_before = stored_impressions(args.database_url, city.user_ids)

    lbs_port, peer_port = free_port(), free_port()
    serve = lbs_command("serve", "--workers", str(args.workers), "--bind", f"127.0.0.1:{lbs_port}")
    peer_command, peer_env = peer_server(args.database_url, args.workers, peer_port)
    results: dict[str, Measured] = {}
    rss: dict[str, list[tuple[float, float]]] = {}
    probe: dict[str, Any] = {"items": 0}
    profile: http_profile.Profile | None = None
    profile_connections: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="lbs-bench-http-") as tmp_name:
        tmp = Path(tmp_name)
        city_dir = Path(args.city_dir)
        with (
            running("lbs", serve, city_dir, env, lbs_port, "/readyz", tmp / "lbs.log") as lbs,
            running(
                "peer", peer_command, PEER_DIR, peer_env, peer_port, "/healthz", tmp / "peer.log"
            ) as peer,
        ):
            rss["lbs, after start (index loaded)"] = memory(lbs)

            def fill(query: str, radius_m: int | None = None) -> list[str]:
                if "{view}" in query:
                    return [query.format(view=box) for box in views(city.positions, args.seed)]
                return [
                    query.format(lat=f"{lat:.6f}", lon=f"{lon:.6f}", r=radius_m, bbox=city.bbox)
                    for lat, lon in city.positions
                ]

            for radius_m in sorted({c.radius_m for c in args.selected if c.radius_m}):
                name = f"peer-{radius_m // 1000}km"
                file = requests_file(tmp, name, fill(PEER_QUERY, radius_m))
                results[name] = measure(peer, name, f"peer, {radius_m // 1000} km", file, args)
            for case in args.selected:
                if not case.name.startswith("distance") and len(rss) == 1:
                    # The model is loaded by the first request that ranks (or has_deal, or clusters).
                    rss["lbs, after the distance cases (no model loaded yet)"] = memory(lbs)
                if case.personalised:
                    probe = probe_user(lbs.port, fill(case.query)[0], city.tokens[0])
                file = requests_file(
                    tmp, case.name, fill(case.query), city.tokens if case.personalised else ()
                )
                results[case.name] = measure(lbs, case.name, case.label, file, args)
                if case.personalised and args.profile:
                    profile, extra, profile_connections = profile_worker(lbs, file, args, tmp)
                    results[case.name].extra.append(extra)
            rss["lbs, after the run"] = memory(lbs)
            rss["peer, after the run"] = memory(peer)
            lbs_log = lbs.log_text()
        # Both stopped (SIGTERM, waited): buffered events, if any, are written by now.
        impressions_after = stored_impressions(args.database_url, city.user_ids)

    facts["loadavg_end"] = os.getloadavg()
    facts["total_s"] = time.monotonic() - began
    events = None
    personalised = next((c.name for c in args.selected if c.personalised), None)
    if personalised:
        events = (results[personalised], probe, impressions_after - impressions_before)
    doc = render(facts, results, rss, events, (profile, profile_connections), lbs_log)
    print("\n" + doc)
    if args.output != "-":
        write_section(Path(args.output), args.label, doc)
        print(f"written to {args.output} (section {args.label})")


def probe_user(port: int, path: str, token: str) -> dict[str, Any]:
    """One personalised request before wrk's: the token must be accepted (the hash is right)."""
    status, body = get(port, path, {"Authorization": f"Bearer {token}"}, timeout=120)
    if status != 200:
        raise SystemExit(f"a benchmark user's token was refused ({status}): {body[:300]!r}")
    page = json.loads(body)
    return {"items": len(page["items"]), "ranking": page.get("ranking"), "model": page.get("model")}


def profile_worker(
    server: Server, file: Path, args: argparse.Namespace, tmp: Path
) -> tuple[http_profile.Profile, Wrk, dict[int, int]]:
    """py-spy on the busiest worker during an extra run of the case (the measured run is not
    slowed). Busiest: holding the most of wrk's connections a few seconds into the run."""
    output = tmp / "profile.txt"
    load = start_wrk(server.port, file, args.profile + 5, args.load)
    time.sleep(3)
    connections = server.connections()
    pid = max(connections, key=lambda p: connections[p])
    print(f"profile: py-spy on worker {pid} for {args.profile} s; connections {connections} ...", flush=True)
    recorder = http_profile.start_recording(pid, args.profile, output)
    _, stderr = recorder.communicate(timeout=args.profile + 120)
    loaded = finish_wrk(load, args.profile + args.timeout + 120)
    if recorder.returncode != 0 or not output.exists():
        raise SystemExit(f"py-spy failed ({recorder.returncode}): {stderr.decode(errors='replace')}")
    drain(server)
    return http_profile.summarise(output.read_text()), loaded, connections


# -- report -------------------------------------------------------------------------------


def render(
    facts: dict[str, Any],
    results: dict[str, Measured],
    rss: dict[str, list[tuple[float, float]]],
    events: tuple[Measured, dict[str, Any], int] | None,
    profiled: tuple[http_profile.Profile | None, dict[int, int]],
    lbs_log: str,
) -> str:
    args = facts["args"]
    load = "/".join(f"{x:.2f}" for x in facts["loadavg_start"])
    out = [
        f"## Measured: {args.label}",
        "",
        "```",
        facts["command"],
        "```",
        "",
        f"{facts['when']}. lbs from {facts['lbs']}; benchmark at {facts['bench']}. {facts['machine']}. "
        f"Load average before the run {load} (1/5/15 min). {args.workers} gunicorn workers, x {THREADS} "
        f"threads for lbs and x {PEER_THREADS} for the peer; wrk: 1 thread, {args.connections} connections "
        f"({'a new one per request' if args.close else 'kept open'}), {args.warmup} s "
        f"warm-up then {args.duration} s measured per case, timeout {args.timeout} s, {POSITIONS:,} "
        "positions rotating.",
        "",
        "| case | lbs req/s | answers | p50 / p99 ms | non-2xx / socket errors / timeouts | peer req/s "
        "| lbs ÷ peer | connections per worker | load (1 min) |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | --- | ---: |",
    ]

    def latency(w: Wrk) -> str:
        # wrk leaves answers slower than its timeout out of its percentiles: once they are
        # more than 1 - q of the answers, its q-th percentile is only a floor, shown as such.
        if not w.requests:
            return f"none in {w.duration_s:.0f} s"
        floor = f"> {args.timeout * 1000:,}"
        p50 = floor if w.timeouts >= w.requests / 2 else f"{w.p50_ms:,.0f}"
        p99 = floor if w.timeouts >= w.requests / 100 else f"{w.p99_ms:,.0f}"
        return f"{p50} / {p99}"

    def spread(m: Measured) -> str:
        return " / ".join(str(n) for n in m.connections.values()) or "—"

    def row(m: Measured, peer: Measured | None) -> str:
        w = m.run
        peer_rps = "—" if peer is None else f"{peer.run.per_s:,.0f}"
        versus = "—" if peer is None else times(w.per_s, peer.run.per_s)
        return (
            f"| {m.label} | {w.per_s:,.1f} | {w.requests:,} | {latency(w)} | {w.errors} "
            f"| {peer_rps} | {versus} | {spread(m)} | {m.load_1min:.2f} |"
        )

    cases = {c.name: c for c in CASES}
    for name, m in results.items():
        if name.startswith("peer-"):
            w = m.run
            out.append(
                f"| *{m.label}* (`ST_DWithin … ORDER BY geog <-> q LIMIT 20`) | {w.per_s:,.1f} "
                f"| {w.requests:,} | {latency(w)} | {w.errors} | | | {spread(m)} | {m.load_1min:.2f} |"
            )
            continue
        radius = cases[name].radius_m
        out.append(row(m, results.get(f"peer-{radius // 1000}km") if radius else None))
    out.append("")
    slow = [f"{m.label} {m.drain_s:.0f} s" for m in results.values() if m.drain_s >= 1]
    if slow:
        out.append(
            "- After these cases lbs took this long to answer /healthz promptly again (requests of "
            f"timed-out clients still being worked on): {'; '.join(slow)}."
        )
    out.append("- Memory per worker, MB (RSS / PSS; PSS counts pages the workers share once):")
    for when, found in rss.items():
        shown = ", ".join(f"{r:,.0f} / {p:,.0f}" for r, p in found) or "—"
        out.append(f"  - {when}: {shown}")
    if events is not None:
        out += events_lines(*events)
    end = "/".join(f"{x:.2f}" for x in facts["loadavg_end"])
    out.append(f"- Load average at the end {end}; whole run {facts['total_s']:.0f} s.")
    errors = [line for line in lbs_log.splitlines() if re.search(r"ERROR|Traceback|WORKER TIMEOUT", line)]
    if errors:
        out += ["- lbs's log, last lines with errors:", "", "```", *errors[-8:], "```"]
    profile, connections = profiled
    if profile is not None:
        held = ", ".join(str(n) for n in connections.values())
        out += [
            "",
            f"### Profile: one lbs worker under the personalised case ({args.profile} s, py-spy)",
            "",
            f"wrk's {args.connections} connections per worker a few seconds into the run: {held}; "
            "the worker holding the most was profiled.",
            "",
            *http_profile.render(profile),
        ]
    return "\n".join(out) + "\n"


def times(a: float, b: float) -> str:
    """a ÷ b, two significant digits below 1 (0.0043, not 0.00)."""
    if not b:
        return "—"
    return f"{a / b:.2f}" if a >= b else f"{a / b:.2g}"


def events_lines(m: Measured, probe: dict[str, Any], stored: int) -> list[str]:
    seen = sum(w.items for w in m.all_runs) + probe["items"]
    pages = sum(w.ok for w in m.all_runs) + 1
    unanswered = sum(w.unanswered for w in m.all_runs)
    upper = seen + PAGE * unanswered
    if seen <= stored <= upper:
        verdict = "consistent: none lost"
    elif stored < seen:
        verdict = f"**{seen - stored:,} lost**"
    else:
        verdict = f"**{stored - upper:,} more than requests could have made**"
    model = probe.get("model") or "none"
    return [
        f"- Events, personalised case (ranking `{probe.get('ranking')}`, model {model}): impressions in "
        f"the 200 responses seen {seen:,} ({pages:,} pages, warm-up, probe and profile runs "
        f"included), requests sent without an answer seen {unanswered:,} (at most {PAGE * unanswered:,} "
        f"more impressions); stored for the benchmark's users after lbs stopped: {stored:,}. {verdict}."
    ]


def write_section(path: Path, label: str, section: str) -> None:
    """Replace this label's section of the page (or add it at the end); keep the rest as written."""
    begin, end = f"<!-- BEGIN http_load.py {label} -->\n", f"<!-- END http_load.py {label} -->\n"
    text = path.read_text() if path.exists() else "# Performance\n"
    block = begin + section + end
    found = re.search(re.escape(begin) + ".*?" + re.escape(end), text, re.S)
    if found is None:
        path.write_text(text.rstrip("\n") + "\n\n" + block)
    else:
        path.write_text(text[: found.start()] + block + text[found.end() :])


if __name__ == "__main__":
    main()
