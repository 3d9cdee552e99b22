"""The soak, shortened (issue 16, "keep it proven"): benchmarks/soak.py for 30 s on 4 workers
over PostgreSQL, a small city. It exits 1 on any 5xx, oversold deal, voucher count that
differs from its units taken, user over a limit, or client event accepted but not stored.
The full run (300 s, 20,000 merchants) is in docs/reliability.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import PostgresServer

pytestmark = [pytest.mark.gunicorn, pytest.mark.postgis]

REPO = Path(__file__).resolve().parents[2]


def test_a_short_soak_on_four_workers_loses_nothing(pg_server: PostgresServer) -> None:
    name = pg_server.create_database(from_template=False)  # the soak re-creates it with its marker
    try:
        run = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "soak.py"), "--database-url", pg_server.url_of(name),
             "--duration", "30", "--merchants", "2000", "--clients", "8", "--workers", "4"],
            capture_output=True, text=True, timeout=600, cwd=REPO,
        )  # fmt: skip
    finally:
        pg_server.drop_later(name)
    report = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, report
    for line in ("5xx or no answer: 0", "deals oversold: 0", "events accepted minus stored: 0"):
        assert f"- {line}" in report, report
