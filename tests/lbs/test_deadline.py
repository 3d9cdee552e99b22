"""A request's deadline reaches the database: no statement starts after it, a statement running
into it stops (PostgreSQL's statement_timeout, SQLite's progress handler and busy timeout),
statements early in a request cost no extra round trip, and a connection goes back to its
default when it returns to the pool."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from lbs import deadline
from lbs.db import BEGIN_IMMEDIATE, SQLITE_BUSY_TIMEOUT_MS, make_engine

TIMEOUT_S = 5.0
# A timeout much longer than any deadline below: what stops a statement is then the deadline.
PATIENT_TIMEOUT_S = 60.0
# Counts to a billion: minutes of work on either database, unless something stops it.
ENDLESS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n"
)


@pytest.fixture
def serving(database_url: str) -> Iterator[Engine]:
    """The engine as the serving app makes it: one pooled connection, so each test reuses it."""
    engine = make_engine(database_url, request_timeout_s=TIMEOUT_S, pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def patient(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, request_timeout_s=PATIENT_TIMEOUT_S, pool_size=1)
    yield engine
    engine.dispose()


def bound(connection: Connection) -> tuple[int, str]:
    """The database's bound on a statement in ms, and where it was set (PostgreSQL: 'client' for
    the connection's startup options, 'session' for a SET; SQLite: its busy timeout)."""
    if connection.dialect.name == "sqlite":
        return int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()), "busy_timeout"
    setting, source = connection.execute(
        text("SELECT setting, source FROM pg_settings WHERE name = 'statement_timeout'")
    ).one()
    return int(setting), source


def test_early_in_a_request_statements_cost_no_extra_round_trip(serving: Engine) -> None:
    with serving.connect() as connection, deadline.within(TIMEOUT_S):
        ms, source = bound(connection)
    if serving.dialect.name == "postgresql":
        assert (ms, source) == (5000, "client")  # the connection's startup option: no SET was sent
    else:  # SQLite's busy timeout is an in-process setting, moved freely
        assert 0 < ms <= TIMEOUT_S * 1000


def test_late_in_a_request_the_bound_is_the_time_left(serving: Engine) -> None:
    with serving.connect() as connection, deadline.within(1.0):
        ms, _ = bound(connection)
    assert 0 < ms <= 1000


def test_a_connection_returns_to_the_pool_with_its_default_bound(serving: Engine) -> None:
    with serving.connect() as connection, deadline.within(1.0):
        assert bound(connection)[0] <= 1000
    default = (
        (5000, "client") if serving.dialect.name == "postgresql" else (SQLITE_BUSY_TIMEOUT_MS, "busy_timeout")
    )
    with serving.connect() as connection:  # the same pooled connection
        assert bound(connection) == default


def test_a_statement_running_into_the_deadline_stops(patient: Engine) -> None:
    started = time.monotonic()
    with patient.connect() as connection, deadline.within(0.5), pytest.raises(OperationalError) as raised:
        connection.exec_driver_sql(ENDLESS).scalar_one()
    assert time.monotonic() - started < PATIENT_TIMEOUT_S / 2  # stopped by the deadline, not the default
    if patient.dialect.name == "postgresql":
        assert getattr(raised.value.orig, "sqlstate", None) == "57014"  # query_canceled
    else:
        assert "interrupted" in str(raised.value.orig)


def test_no_statement_starts_after_the_deadline(serving: Engine) -> None:
    with serving.connect() as connection, deadline.within(0.0), pytest.raises(deadline.DeadlineExceeded):
        connection.execute(text("SELECT 1"))


def test_a_lock_wait_ends_at_the_deadline(patient: Engine, database_url: str) -> None:
    holder = make_engine(database_url)
    try:
        with holder.connect() as other:
            if patient.dialect.name == "postgresql":
                other.exec_driver_sql("LOCK TABLE merchants IN ACCESS EXCLUSIVE MODE")
                unbounded_s = PATIENT_TIMEOUT_S
            else:  # the write lock: readers go on, writers wait
                other.execution_options(**{BEGIN_IMMEDIATE: True}).exec_driver_sql("SELECT 1")
                unbounded_s = SQLITE_BUSY_TIMEOUT_MS / 1000
            started = time.monotonic()
            with patient.connect() as connection, deadline.within(0.5), pytest.raises(OperationalError):
                connection.exec_driver_sql("DELETE FROM merchants")
            assert time.monotonic() - started < unbounded_s / 2
            other.rollback()
    finally:
        holder.dispose()


def test_outside_a_request_nothing_is_lowered(serving: Engine) -> None:
    with serving.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
        ms, _ = bound(connection)
    assert ms == (5000 if serving.dialect.name == "postgresql" else SQLITE_BUSY_TIMEOUT_MS)


def test_work_done_for_every_request_can_run_unbounded(serving: Engine) -> None:
    with serving.connect() as connection, deadline.within(0.0), deadline.unbounded():
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
