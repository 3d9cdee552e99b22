"""A PostgreSQL streaming replica serving lbs's reads (LBS_DATABASE_READ_URL): lag, routing, freshness.

    .venv/bin/python benchmarks/replica.py      # as root or the postgres OS user, local cluster

On this machine, against the local PostgreSQL (the primary, --primary-port):

1. a database of the benchmark's own on the primary, with a synthetic city of --merchants
   (`lbs seed synthetic`);
2. a streaming replica of the whole cluster (benchmarks/pg_replica.py: pg_basebackup -R
   into a temporary directory, a hot standby on --replica-port);
3. replica lag, --samples times: a row committed on the primary, then the replica polled
   until it shows the row; idle, then while another connection writes events in batches
   of 1,000 as fast as it can;
4. `lbs serve` (one worker) with LBS_DATABASE_URL on the primary and LBS_DATABASE_READ_URL
   on the replica: /v1/nearby answers; whose connections each server holds; with the
   replica's replay paused, a merchant created through the API (a write: the primary) is a
   404 to a read (the replica) until replay resumes; then how long a new merchant takes to
   show in /v1/nearby, against the same measured on an lbs reading the primary only;
5. everything stopped and removed: lbs, the replica and its files, the database, and the
   pg_hba.conf line if one was added.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from http_servers import free_port, get, running
from pg_replica import Replica, replication_allowed, streaming_replica
from scratch_database import libpq_url, reset_database

MARKER = "lbs_bench_replica_marker"
VENV_BIN = Path(sys.executable).parent


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"


# -- replica lag ----------------------------------------------------------------------------


def lag_samples(primary: psycopg.Connection, replica: psycopg.Connection, n: int, first: int) -> list[float]:
    """Milliseconds from a commit returning on the primary to its row showing on the replica."""
    lags = []
    for probe in range(first, first + n):
        primary.execute("INSERT INTO replica_probe VALUES (%s)", (probe,))  # autocommit
        committed = time.perf_counter()
        while replica.execute("SELECT 1 FROM replica_probe WHERE n = %s", (probe,)).fetchone() is None:
            pass
        lags.append((time.perf_counter() - committed) * 1000)
        time.sleep(0.01)
    return lags


@contextmanager
def write_load(primary_url: str) -> Iterator[dict[str, float]]:
    """Another connection inserting events, 1,000 rows a transaction, until the block ends."""
    stop = threading.Event()
    done: dict[str, float] = {"rows": 0, "wal_bytes": 0, "seconds": 0}

    def write() -> None:
        with psycopg.connect(primary_url, autocommit=True) as conn:
            start_lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
            started = time.perf_counter()
            while not stop.is_set():
                conn.execute(
                    "INSERT INTO events (kind, source, user_id, merchant_id, occurred_at, received_at) "
                    "SELECT 'impression', 'server', 1 + g % 1000, 1 + g % 5000, now(), now() "
                    "FROM generate_series(1, 1000) g"
                )
                done["rows"] += 1000
            done["seconds"] = time.perf_counter() - started
            done["wal_bytes"] = float(
                conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (start_lsn,)).fetchone()[0]  # type: ignore[index]
            )

    writer = threading.Thread(target=write, name="write-load")
    writer.start()
    time.sleep(1.0)  # let the load reach its pace
    try:
        yield done
    finally:
        stop.set()
        writer.join()


# -- lbs against the primary and the replica ------------------------------------------------


def request(port: int, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.startswith((b"{", b"[")) else raw
    finally:
        conn.close()


def create_merchant(port: int, token: str, lat: float, lon: float) -> int:
    status, body = request(
        port,
        "POST",
        "/v1/merchants",
        {"name": "Replica probe", "category": "cafe", "lat": lat, "lon": lon},
        token,
    )
    if status != 201:
        raise SystemExit(f"POST /v1/merchants answered {status}: {body!r}")
    return int(body["id"])


def nearby_ids(port: int, lat: float, lon: float) -> list[int]:
    status, body = get(port, f"/v1/nearby?lat={lat}&lon={lon}&radius_m=100&sort=distance&limit=100")
    if status != 200:
        raise SystemExit(f"/v1/nearby answered {status}: {body[:300]!r}")
    return [item["merchant"]["id"] for item in json.loads(body)["items"]]


def freshness_samples(port: int, token: str, at: tuple[float, float], n: int) -> list[float]:
    """Milliseconds from POST /v1/merchants answering to the merchant showing in /v1/nearby."""
    lags = []
    for i in range(n):
        lat, lon = at[0] + 0.0005 * i, at[1]
        merchant_id = create_merchant(port, token, lat, lon)
        written = time.perf_counter()
        while merchant_id not in nearby_ids(port, lat, lon):
            time.sleep(0.005)
        lags.append((time.perf_counter() - written) * 1000)
    return lags


def connections(url: str, database: str, application: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            (database, application),
        ).fetchall()
    return [r[0] for r in rows]


def lbs_env(workdir: Path, primary_url: str, read_url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LBS_")}
    env.update(
        LBS_DATABASE_URL=primary_url,
        LBS_DATABASE_READ_URL=read_url,
        LBS_OPERATOR_TOKEN_SHA256=hashlib.sha256(token.encode()).hexdigest(),
        LBS_SECRET_KEY_FILE=str(workdir / "lbs-secret.key"),
        LBS_MODEL_DIR=str(workdir / "lbs-models"),
        LBS_RATE_LIMIT_NEW_USERS="100000/minute",
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
    )
    return env


def serve(workdir: Path, name: str, env: dict[str, str]) -> Any:
    port = free_port()
    command = [str(VENV_BIN / "lbs"), "serve", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    return running(name, command, workdir, env, port, "/readyz", workdir / f"{name}.log")


# -- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--primary-port", type=int, default=5432)
    parser.add_argument("--replica-port", type=int, default=5433)
    parser.add_argument("--database", default="lbs_bench_replica")
    parser.add_argument("--merchants", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=200, help="lag samples, idle and under load each")
    parser.add_argument("--fresh-samples", type=int, default=20, help="merchants written then looked for")
    args = parser.parse_args()

    server = f"postgresql+psycopg://postgres@127.0.0.1:{args.primary_port}/"
    primary_url = server + args.database
    workdir = Path(tempfile.mkdtemp(prefix="lbs-replica-bench-"))
    token = "lbs_op_" + secrets.token_urlsafe(24)
    added: str | None = None
    reset_database(primary_url, MARKER)
    try:
        env = lbs_env(workdir, primary_url, "", token)
        started = time.perf_counter()
        subprocess.run(
            [str(VENV_BIN / "lbs"), "seed", "synthetic", "--merchants", str(args.merchants)],
            cwd=workdir,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"primary: database {args.database}, {args.merchants:,} merchants seeded in "
            f"{time.perf_counter() - started:.0f} s"
        )
        with psycopg.connect(libpq_url(primary_url), autocommit=True) as primary:
            primary.execute("CREATE TABLE replica_probe (n bigint PRIMARY KEY)")
            with replication_allowed(primary) as added:
                rule = f"added {added}" if added else "replication from 127.0.0.1 already allowed"
                print(f"pg_hba.conf: {rule}")
                with streaming_replica(primary, args.primary_port, args.replica_port) as replica:
                    size_gb = replica.backup_bytes / 2**30
                    print(
                        f"replica: pg_basebackup -R of the whole cluster, {size_gb:.2f} GB in "
                        f"{replica.backup_seconds:.0f} s; hot standby on port {replica.port}, streaming"
                    )
                    run_with_replica(args, primary, replica, primary_url, workdir, token)
    finally:
        with psycopg.connect(libpq_url(server + "postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    print(
        "torn down: lbs stopped, replica stopped and deleted, database dropped"
        + (", pg_hba.conf line removed" if added else "")
    )


def run_with_replica(
    args: argparse.Namespace,
    primary: psycopg.Connection,
    replica: Replica,
    primary_url: str,
    workdir: Path,
    token: str,
) -> None:
    with psycopg.connect(replica.libpq(args.database), autocommit=True) as standby:
        idle = lag_samples(primary, standby, args.samples, 0)
        with write_load(libpq_url(primary_url)) as load:
            loaded = lag_samples(primary, standby, args.samples, args.samples)
        rate = load["rows"] / load["seconds"]
        wal = load["wal_bytes"] / load["seconds"] / 2**20
        print(f"\nreplica lag, commit on the primary to visible on the replica, {args.samples} samples each:")
        print(f"  idle:                  {percentiles(idle)}")
        print(
            f"  under a write load:    {percentiles(loaded)}   ({rate:,.0f} events/s, {wal:.1f} MB/s of WAL)"
        )

        at = primary.execute("SELECT lat, lon FROM merchants ORDER BY id LIMIT 1").fetchone()
        assert at is not None
        read_url = replica.url(args.database) + "?application_name=lbs-read"
        write_url = primary_url + "?application_name=lbs-write"
        env = lbs_env(workdir, write_url, read_url, token)
        with serve(workdir, "lbs-with-replica", env) as lbs:
            ids = nearby_ids(lbs.port, at[0], at[1])
            # The deal book polls with the replica's snapshot (pg_current_snapshot in recovery).
            deals, _ = get(lbs.port, f"/v1/nearby?lat={at[0]}&lon={at[1]}&radius_m=5000&has_deal=true")
            reads = connections(replica.libpq("postgres"), args.database, "lbs-read")
            print(f"\nlbs serve, 1 worker, reads on the replica: /v1/nearby answered {len(ids)} merchants, "
                  f"has_deal=true {deals}")  # fmt: skip
            print(f"  lbs's connections on the replica: {len(reads)} (last queries: {reads[:2]})")
            if not reads or deals != 200:
                raise SystemExit("lbs holds no connection on the replica, or its deals failed there")

            standby.execute("SELECT pg_wal_replay_pause()")
            merchant_id = create_merchant(lbs.port, token, at[0], at[1])
            paused_status, _ = request(lbs.port, "GET", f"/v1/merchants/{merchant_id}")
            standby.execute("SELECT pg_wal_replay_resume()")
            resumed = time.perf_counter()
            while (status := request(lbs.port, "GET", f"/v1/merchants/{merchant_id}")[0]) != 200:
                time.sleep(0.002)
            caught_up_ms = (time.perf_counter() - resumed) * 1000
            print(
                f"  replay paused: POST /v1/merchants made {merchant_id} on the primary; GET it: "
                f"{paused_status} (read on the replica); replay resumed: {status} after {caught_up_ms:.0f} ms"
            )
            writes = connections(libpq_url(primary_url), args.database, "lbs-write")
            print(f"  lbs's connections on the primary, after the write: {len(writes)}")
            if paused_status != 404:
                raise SystemExit(
                    "a read saw a write the replica had not replayed: it did not read the replica"
                )
            with_replica = freshness_samples(lbs.port, token, (at[0] + 0.01, at[1]), args.fresh_samples)

        env = lbs_env(workdir, write_url, "", token)
        with serve(workdir, "lbs-primary-only", env) as lbs:
            primary_only = freshness_samples(lbs.port, token, (at[0] + 0.02, at[1]), args.fresh_samples)

    refresh_s = 1.0
    print(
        f"\nfreshness: POST /v1/merchants answered -> the merchant in /v1/nearby, {args.fresh_samples} "
        f"samples (LBS_INDEX_REFRESH_S={refresh_s:g}; the worker's own write: its next read polls):"
    )
    print(f"  reads on the primary:  {percentiles(primary_only)}")
    print(f"  reads on the replica:  {percentiles(with_replica)}")
    bound = refresh_s * 1000 + max(loaded)
    print(
        f"\nfreshness bound with a replica: index_refresh_s + replica lag = {refresh_s * 1000:.0f} ms + "
        f"{max(loaded):.1f} ms (max under load here) = {bound:.0f} ms on this machine"
    )


if __name__ == "__main__":
    main()
