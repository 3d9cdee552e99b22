"""PostgreSQL drops every connection (a restart, a failover, an idle timeout in a proxy): with
no ping on checkout, the request that meets a dead connection answers a clean 503 problem,
never a 500, and the pool replaces its connections so that the next requests succeed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text

from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.server import gunicorn

pytestmark = pytest.mark.gunicorn

PROBLEM_JSON = "application/problem+json"


@pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgis)], indirect=True)
def test_dropped_connections_answer_503_once_then_the_pool_recovers(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    env = {"LBS_RATE_LIMIT_NEW_USERS": "100000/minute", "LBS_LOG_LEVEL": "WARNING"}
    with gunicorn(
        database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=1, env=env, serving_config=True
    ) as server:
        # Several requests at once: the worker's pool holds several connections.
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(lambda i: server.post("/v1/users", f"warm-{i}").status_code, range(16)))
        assert set(statuses) == {201}

        with engine.connect() as admin:
            ended = admin.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": make_url(database_url).database},
            ).scalar_one()
        assert ended >= 1

        first = server.post("/v1/users", "after-drop")
        assert first.status_code == 503 and first.headers["Content-Type"] == PROBLEM_JSON, first.text
        after = [server.post("/v1/users", f"recovered-{i}").status_code for i in range(8)]
        assert after == [201] * 8
