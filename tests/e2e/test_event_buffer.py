"""Impressions are buffered off the request path and none is lost when gunicorn stops gracefully."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.server import Server, gunicorn
from tests.factories import merchant, seed

SPOT = (60.1699, 24.9384)
NEARBY = f"/v1/nearby?lat={SPOT[0]}&lon={SPOT[1]}&radius_m=500&limit=7&sort=distance"

pytestmark = pytest.mark.gunicorn


def impressions(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(text("SELECT count(*) FROM events WHERE kind = 'impression'")).scalar_one()
        )


def shown_to_users(server: Server, n: int) -> int:
    """n personalised pages from several users at once; how many items the clients were shown."""
    tokens = [server.post("/v1/users", f"user-{i}").json()["token"] for i in range(4)]

    def one(i: int) -> int:
        response = server.get(NEARBY, f"page-{i}", {"Authorization": f"Bearer {tokens[i % 4]}"})
        assert response.status_code == 200, response.text
        return len(response.json()["items"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        return sum(pool.map(one, range(n)))


def test_a_graceful_stop_writes_every_buffered_impression(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    seed(engine, [merchant(f"m{i}", SPOT[0] + i * 1e-4, SPOT[1]) for i in range(10)])
    # Nothing is flushed by the clock in this test: only the stop can write them.
    env = {"LBS_EVENT_FLUSH_S": "3600"}
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=2, env=env) as server:
        shown = shown_to_users(server, 60)
        assert shown == 60 * 7
        assert impressions(engine) == 0  # buffered, not written by the reads
    assert impressions(engine) == shown


def test_buffered_impressions_are_written_within_the_flush_interval(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    seed(engine, [merchant(f"m{i}", SPOT[0] + i * 1e-4, SPOT[1]) for i in range(10)])
    env = {"LBS_EVENT_FLUSH_S": "0.5"}
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=2, env=env) as server:
        shown = shown_to_users(server, 30)
        deadline = time.monotonic() + 10.0  # the interval, with room for a loaded machine
        while impressions(engine) < shown and time.monotonic() < deadline:
            time.sleep(0.1)
        assert impressions(engine) == shown
