"""A write whose COMMIT fails is a 503 problem, not a 500 (issue 16, defect 6).

The unit of work commits after the view has answered (lbs/app.py), outside the error
handlers. Reproduced as the outside run did: a deferred constraint trigger makes COMMIT
wait, and the backend is terminated while it waits. PostgreSQL only: SQLite has no backend
to terminate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from tests.deals_factory import bearer, create_deal, make_merchant, make_user
from tests.problems import assert_problem

pytestmark = pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgis)])


@contextmanager
def slow_commits(engine: Engine, table: str) -> Iterator[None]:
    """COMMIT of a transaction that inserted into ``table`` waits in a deferred trigger."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$"
            )
        )
        connection.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit()"
            )
        )
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TRIGGER test_slow_commit ON {table}"))
            connection.execute(text("DROP FUNCTION test_slow_commit()"))


def terminate_while_committing(engine: Engine, request: Future[Any]) -> None:
    """Terminate the backend that sleeps in the trigger, once the request has got there."""
    deadline = time.monotonic() + 10
    with engine.connect() as connection:
        while time.monotonic() < deadline and not request.done():
            pids = connection.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()"
                )
            ).all()
            if pids:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
                return
            time.sleep(0.02)
    raise AssertionError("no backend was waiting at COMMIT")


def test_a_commit_that_fails_is_a_503_and_the_next_request_succeeds(
    engine: Engine, client: FlaskClient
) -> None:
    with slow_commits(engine, "users"), ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/v1/users")
        terminate_while_committing(engine, pending)
        response = pending.result(timeout=30)
    problem = assert_problem(response, 503)
    assert problem["type"].endswith("/not-ready")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM users")) == 0
    assert client.post("/v1/users").status_code == 201  # the pool replaced the dead connection


def test_a_claim_whose_commit_fails_is_claimed_once_on_retry(engine: Engine, client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = create_deal(client, key, publish=True, quantity_total=5)
    _, user = make_user(client)
    headers = {**bearer(user), "Idempotency-Key": "claim-once-1"}
    path = f"/v1/deals/{deal['id']}/claim"

    with slow_commits(engine, "vouchers"), ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, path, headers=headers)
        terminate_while_committing(engine, pending)
        assert_problem(pending.result(timeout=30), 503)
    first = client.post(path, headers=headers)
    again = client.post(path, headers=headers)

    assert first.status_code == 201, first.get_data(as_text=True)
    assert again.status_code in (200, 201) and again.get_json()["id"] == first.get_json()["id"]
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM vouchers")) == 1
        claimed = connection.scalar(
            text("SELECT quantity_claimed FROM deals WHERE id = :id"), {"id": deal["id"]}
        )
    assert claimed == 1
