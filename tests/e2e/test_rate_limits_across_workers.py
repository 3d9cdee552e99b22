"""A rate limit is its documented number however many workers answer (issue 16, defect 5):
with the default store (the database) three gunicorn workers count as one. With per-worker
memory, each counted alone and a caller got up to three times the limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.server import gunicorn

pytestmark = pytest.mark.gunicorn

LIMIT = 10
WORKERS = 3


def test_three_workers_enforce_one_limit(database_url: str, tmp_path: Path) -> None:
    env = {"LBS_RATE_LIMIT_NEW_USERS": f"{LIMIT}/hour", "LBS_LOG_LEVEL": "WARNING"}
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=env) as server:
        server.wait_for_workers(WORKERS)  # /healthz only: no user made yet
        tags = [f"user-{i}" for i in range(3 * LIMIT)]
        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda tag: server.post("/v1/users", tag).status_code, tags))
        answered_by = server.wait_for_log(tags)

    assert sorted(statuses) == [201] * LIMIT + [429] * (2 * LIMIT)
    assert len({answered_by[tag] for tag in tags}) == WORKERS  # every worker took part
