"""SQLite under faults (issue 16, "keep it proven"): the database file locked by another
process, and its disk full. Writes answer a 503 problem soon (never a 500, never a hang),
reads go on where they can, /readyz tells which, and once the fault ends the same app
serves again without a restart. Afterwards the books balance (lbs.services.reconciliation):
stock taken = vouchers held = the claims answered 201, and every event accepted is stored.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.models import Event
from lbs.services.reconciliation import check_books
from tests.databases import SqliteTemplate
from tests.deals_factory import HELSINKI, bearer, create_deal, make_merchant, make_user
from tests.problems import assert_problem

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite"])

TIMEOUT_S = 1.0


class Traffic:
    """Claims, client events and nearby reads against one deal, with what each answer said."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        _, key = make_merchant(client, *HELSINKI)
        self.deal = create_deal(client, key, publish=True, quantity_total=40)
        self.tokens = [make_user(client)[1] for _ in range(12)]
        self.vouchers: set[int] = set()
        self.events_accepted = 0
        self.impressions_shown = 0

    def claim(self, token: str, key: str) -> Any:
        response = self.client.post(
            f"/v1/deals/{self.deal['id']}/claim", headers={**bearer(token), "Idempotency-Key": key}
        )
        if response.status_code in (200, 201):
            self.vouchers.add(response.get_json()["id"])
        return response

    def events(self, token: str, ids: list[str]) -> Any:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        merchant = self.deal["merchant_id"]
        events = [{"id": i, "kind": "click", "merchant_id": merchant, "occurred_at": now} for i in ids]
        body = {"events": events}
        response = self.client.post("/v1/events", json=body, headers=bearer(token))
        if response.status_code == 200:
            self.events_accepted += response.get_json()["accepted"]
        return response

    def nearby(self, token: str) -> Any:
        response = self.client.get(
            "/v1/nearby", query_string={"lat": HELSINKI[0], "lon": HELSINKI[1]}, headers=bearer(token)
        )
        if response.status_code == 200:
            self.impressions_shown += len(response.get_json()["items"])
        return response

    def assert_books_balance(self, app: OpenAPI, database_url: str) -> None:
        assert app.extensions["lbs"].events.flush() >= 0  # impressions kept through the fault
        assert app.extensions["lbs"].events.pending == 0
        engine = make_engine(database_url)
        try:
            with Session(engine) as session:
                books = check_books(session)
                kinds = dict(session.execute(_counts_by_kind()).all())
        finally:
            engine.dispose()
        assert books.balanced, books.problems()
        assert books.vouchers == len(self.vouchers)
        assert books.client_events == self.events_accepted
        assert kinds.get("impression", 0) == self.impressions_shown


def _counts_by_kind() -> Any:
    return select(Event.kind, func.count()).where(Event.source == "server").group_by(Event.kind)


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    began = time.monotonic()
    return call(), time.monotonic() - began


def test_a_lock_held_by_another_process_is_a_fast_503_for_writes_while_reads_go_on(
    database_url: str, make_app: Callable[..., OpenAPI]
) -> None:
    app = make_app(request_timeout_s=TIMEOUT_S, event_flush_s=3600.0)  # impressions flushed by the test
    traffic = Traffic(app.test_client())
    assert traffic.claim(traffic.tokens[0], "before").status_code == 201

    holder = sqlite3.connect(make_url(database_url).database or "", timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, or a stuck migration
    try:
        claimed, claim_s = timed(lambda: traffic.claim(traffic.tokens[1], "during"))
        events, _ = timed(lambda: traffic.events(traffic.tokens[1], ["e1", "e2"]))
        read = traffic.nearby(traffic.tokens[2])
        ready = traffic.client.get("/readyz")
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert_problem(claimed, 503)
    assert claimed.headers["Retry-After"]
    assert claim_s < TIMEOUT_S + 1.0, f"the claim answered after {claim_s:.1f} s"
    assert_problem(events, 503)
    assert read.status_code == 200 and read.get_json()["items"]  # WAL: readers are not blocked
    assert ready.status_code == 200  # it can serve reads; a write waits for the lock, then 503s

    # Healed without a restart: the retried claim (same key) and events are taken once.
    assert traffic.claim(traffic.tokens[1], "during").status_code == 201
    assert traffic.claim(traffic.tokens[1], "during").status_code == 200
    assert traffic.events(traffic.tokens[1], ["e1", "e2"]).get_json() == {"accepted": 2, "duplicates": 0}
    traffic.assert_books_balance(app, database_url)


@contextmanager
def small_disk(directory: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of size_mb at directory (root: CI runs as root); a missing mount fails the test."""
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


def fill(directory: Path) -> Path:
    """Take every free byte of directory's file system with one file."""
    filler = directory / "filler"
    with suppress(OSError), open(filler, "wb") as out:  # the close, flushing, fails too
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def test_a_full_disk_is_a_503_for_writes_and_writes_resume_once_there_is_room(
    sqlite_template: SqliteTemplate, make_app: Callable[..., OpenAPI], tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk", size_mb=16) as disk:
        database_url = sqlite_template.clone(disk)
        app = make_app(database_url=database_url, request_timeout_s=TIMEOUT_S, event_flush_s=3600.0)
        traffic = Traffic(app.test_client())
        assert traffic.claim(traffic.tokens[0], "before").status_code == 201
        filler = fill(disk)

        answers = []
        for i, token in enumerate(traffic.tokens[1:]):  # until the WAL needs room it has not got
            answers.append(traffic.claim(token, f"full-{i}").status_code)
            ids = [f"full-{i}-{n}-{uuid.uuid4().hex}" for n in range(100)]
            answers.append(traffic.events(token, ids).status_code)
            answers.append(traffic.nearby(token).status_code)
        full = traffic.events(traffic.tokens[1], [f"x-{n}-{uuid.uuid4().hex[:40]}" for n in range(100)])
        ready = traffic.client.get("/readyz")

        assert_problem(full, 503)
        assert set(answers) <= {200, 201, 503}, answers  # never a 500
        assert ready.status_code == 200  # reads go on

        filler.unlink()
        for i, token in enumerate(traffic.tokens[1:]):  # healed: every claim taken, once
            assert traffic.claim(token, f"full-{i}").status_code in (200, 201)
        assert traffic.events(traffic.tokens[1], ["after"]).get_json() == {"accepted": 1, "duplicates": 0}
        traffic.assert_books_balance(app, database_url)


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """Files nobody may write, root included (chattr +i): a read-only volume, as SQLite sees it."""
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def test_a_read_only_database_is_a_503_for_writes_and_heals_once_writable(
    database_url: str, make_app: Callable[..., OpenAPI]
) -> None:
    path = Path(make_url(database_url).database or "")
    seeder = make_app()  # a merchant and its deal, written before the file turns read-only
    traffic = Traffic(seeder.test_client())
    seeder.extensions["lbs"].engine.dispose()

    # Read-only before this app opens it (a file made immutable under an open SQLite would
    # fault its shared-memory map instead: that is a crash, not this test).
    with immutable(path):
        app = make_app(request_timeout_s=TIMEOUT_S, event_flush_s=3600.0)
        traffic.client = app.test_client()
        refused = traffic.claim(traffic.tokens[0], "read-only")
        new_user = traffic.client.post("/v1/users")
        read = traffic.nearby(traffic.tokens[1])
        ready = traffic.client.get("/readyz")

    assert_problem(refused, 503)
    assert_problem(new_user, 503)
    assert read.status_code == 200 and read.get_json()["items"]
    assert ready.status_code == 200

    # Writable again: the pool replaces the connections opened read-only, no restart.
    statuses = [traffic.claim(traffic.tokens[0], "read-only").status_code for _ in range(8)]
    assert 201 in statuses and set(statuses) <= {503, 201, 200}, statuses
    assert statuses[-1] == 200  # the same voucher for the retried key, once
    traffic.assert_books_balance(app, database_url)
