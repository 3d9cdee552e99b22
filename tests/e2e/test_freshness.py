"""A write served by one gunicorn worker shows in every worker's nearby results within the bound:
where the merchant is, whether it is listed, and what it is called (the merchant rows a
worker keeps between requests, lbs.services.merchant_cache).

The documented bound is index_refresh_s (1 s here): a worker polls the change log when its
last poll is older than that. We allow 1 s more for scheduling, then require every answer,
from every worker, to reflect the write, and check in the access log that answers came
from workers other than the one that took the write.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.conftest import OPERATOR, OPERATOR_TOKEN_SHA256
from tests.e2e.server import Server, gunicorn
from tests.factories import merchant, seed

REFRESH_S = 1.0
MARGIN_S = 1.0
SPOT = (60.1699, 24.9384)
NEARBY = f"/v1/nearby?lat={SPOT[0]}&lon={SPOT[1]}&radius_m=300&limit=100"
MIN_ANSWERS = 60
COLLECT_TIMEOUT_S = 60.0

pytestmark = pytest.mark.gunicorn


def burst(server: Server, prefix: str, n: int) -> dict[str, dict[int, str]]:
    """n nearby requests, six at a time, each on its own connection: tag -> names by id."""
    tags = [f"{prefix}-{i}" for i in range(n)]

    def one(tag: str) -> dict[int, str]:
        response = server.get(NEARBY, tag)
        assert response.status_code == 200, response.text
        return {item["merchant"]["id"]: item["merchant"]["name"] for item in response.json()["items"]}

    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(zip(tags, pool.map(one, tags), strict=True))


def write(server: Server, kind: str, target_id: int | None) -> int:
    """Make the write through HTTP; return the id of the merchant it concerns."""
    if kind == "create":
        body = {"name": "Fresh", "category": "cafe", "lat": SPOT[0], "lon": SPOT[1]}
        response = server.send("POST", "/v1/merchants", "write", OPERATOR, body)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])
    assert target_id is not None
    body = {
        "move": {"lat": SPOT[0] + 0.05},
        "deactivate": {"status": "inactive"},
        "rename": {"name": "Renamed"},
    }[kind]
    response = server.send("PATCH", f"/v1/merchants/{target_id}", "write", OPERATOR, body)
    assert response.status_code == 200, response.text
    return target_id


@pytest.mark.parametrize("kind", ["create", "move", "deactivate", "rename"])
def test_a_write_reaches_every_worker_within_the_refresh_bound(
    kind: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    background = seed(engine, [merchant(f"bg{i}", SPOT[0] + i * 1e-4, SPOT[1]) for i in range(10)])
    target = None if kind == "create" else seed(engine, [merchant("target", SPOT[0], SPOT[1] + 1e-4)])[0].id
    shows_write: Callable[[dict[int, str], int], bool] = {
        "create": lambda names, mid: mid in names,
        "move": lambda names, mid: mid not in names,
        "deactivate": lambda names, mid: mid not in names,
        "rename": lambda names, mid: names.get(mid) == "Renamed",
    }[kind]

    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=3, refresh_s=REFRESH_S) as server:
        # Every worker answers (and polls) before the write, so each holds a view to go stale.
        before = burst(server, "before", 30)
        assert all({b.id for b in background} <= set(names) for names in before.values())
        if target is not None:
            assert all(target in names for names in before.values())

        merchant_id = write(server, kind, target)
        deadline = time.monotonic() + REFRESH_S + MARGIN_S
        # Until the deadline a worker may still answer from its previous poll.
        for n in itertools.count():
            if time.monotonic() >= deadline:
                break
            assert server.get(NEARBY, f"settling-{n}").status_code == 200

        answers: dict[str, dict[int, str]] = {}
        give_up = time.monotonic() + COLLECT_TIMEOUT_S
        for round_number in itertools.count():
            answers.update(burst(server, f"after{round_number}", 12))
            workers = server.wait_for_log(["write", *answers])
            answering = {workers[tag] for tag in answers}
            if len(answers) >= MIN_ANSWERS and answering - {workers["write"]}:
                break
            assert time.monotonic() < give_up, f"only worker(s) {answering} answered"

    stale = [tag for tag, names in answers.items() if not shows_write(names, merchant_id)]
    assert not stale, (
        f"{len(stale)} of {len(answers)} answers after the deadline missed the {kind}: {stale[:5]}"
    )
    assert len(answering) >= 2, f"answers came from worker(s) {answering} only"
    assert answering - {workers["write"]}, "no worker other than the writer answered"
