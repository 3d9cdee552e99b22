"""A throwaway streaming replica of the local PostgreSQL cluster, for benchmarks/replica.py.

pg_basebackup -R copies the running cluster into a temporary directory, which starts as a
hot standby on a port of its own, streaming from the primary, and is stopped and deleted at
the end. The primary is left as it was, except for a replication rule in pg_hba.conf when it
has none (added with a marked line, and removed again).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

HBA_MARK = "# added by lbs benchmarks/replica.py; removed when it ends"
HBA_LINE = f"host replication all 127.0.0.1/32 trust  {HBA_MARK}\n"
# A hot standby refuses to start with less of these than its primary has.
MATCH_PRIMARY = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def as_postgres(command: list[str]) -> list[str]:
    """The command as the postgres OS user, which owns the cluster's files."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    if os.environ.get("USER") == "postgres":
        return command
    raise SystemExit("run as root or as the postgres OS user: the replica's files must be the server's")


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _run(command: list[str]) -> None:
    done = subprocess.run(as_postgres(command), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@contextmanager
def replication_allowed(admin: psycopg.Connection) -> Iterator[str | None]:
    """Yields the line added to pg_hba.conf for replication from 127.0.0.1, or None when
    the primary already allowed it; the added line is removed at the end."""
    rules = admin.execute(
        "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND 'replication' = ANY(database) "
        "AND (type = 'local' OR address = '127.0.0.1' OR address = 'all')"
    ).fetchone()
    hba = Path(str(admin.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
    if rules and rules[0]:
        yield None
        return
    with hba.open("a") as out:
        out.write(HBA_LINE)
    admin.execute("SELECT pg_reload_conf()")
    try:
        yield f"{hba}: {HBA_LINE.strip()}"
    finally:
        kept = [line for line in hba.read_text().splitlines(keepends=True) if HBA_MARK not in line]
        hba.write_text("".join(kept))
        admin.execute("SELECT pg_reload_conf()")


@dataclass(frozen=True)
class Replica:
    directory: Path
    port: int
    backup_seconds: float
    backup_bytes: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def libpq(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@contextmanager
def streaming_replica(admin: psycopg.Connection, primary_port: int, port: int) -> Iterator[Replica]:
    """A hot standby of the cluster ``admin`` is connected to, streaming, on ``port``."""
    major = int(str(admin.execute("SHOW server_version_num").fetchone()[0])) // 10000  # type: ignore[index]
    bin_dir = Path(f"/usr/lib/postgresql/{major}/bin")
    matched = {name: admin.execute(f"SHOW {name}").fetchone()[0] for name in MATCH_PRIMARY}  # type: ignore[index]
    parent = Path(tempfile.mkdtemp(prefix="lbs-replica-"))
    _own(parent)
    data = parent / "data"
    started = time.perf_counter()
    _run(
        [
            str(bin_dir / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary_port),
            "-U",
            "postgres",
            "-D",
            str(data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ]
    )
    backup_seconds = time.perf_counter() - started
    backup_bytes = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    # Debian keeps the primary's postgresql.conf and pg_hba.conf in /etc, outside the copy.
    settings = {
        "port": str(port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{parent}'",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
        "shared_buffers": "'128MB'",
        "logging_collector": "off",
        **{name: str(value) for name, value in matched.items()},
    }
    for name, text in (
        ("postgresql.conf", "".join(f"{k} = {v}\n" for k, v in settings.items())),
        ("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 trust\n"),
        ("pg_ident.conf", ""),
    ):
        (data / name).write_text(text)
        _own(data / name)
    log = parent / "replica.log"
    try:
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "120", "start"])
        try:
            _wait_streaming(admin, port)
        except SystemExit as exc:
            raise SystemExit(f"{exc}; its log ends:\n{log.read_text()[-3000:]}") from None
        yield Replica(data, port, backup_seconds, backup_bytes)
    finally:
        subprocess.run(
            as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(parent, ignore_errors=True)


def _wait_streaming(admin: psycopg.Connection, port: int, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        streaming = admin.execute(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ).fetchone()
        if streaming and streaming[0]:
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres") as replica:
                if replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                    return
        time.sleep(0.2)
    states = admin.execute("SELECT state FROM pg_stat_replication").fetchall()
    raise SystemExit(
        f"the replica on port {port} did not start streaming within {timeout_s:.0f} s "
        f"(pg_stat_replication: {states})"
    )
