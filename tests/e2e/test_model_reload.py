"""A model written while gunicorn runs is in use by every worker within LBS_MODEL_RELOAD_S,
without a restart (the documented delay), a damaged file never replaces a good one, and a
model of another database is refused by every worker (the log, /readyz), which rank by
distance meanwhile."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from recommender import artifact
from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.server import Server, gunicorn
from tests.factories import this_database, town_trainer

RELOAD_S = 1.0
MARGIN_S = 2.0
WORKERS = 3

pytestmark = pytest.mark.gunicorn


def versions(server: Server, prefix: str, path: str, n: int = 30) -> tuple[set[str | None], set[int]]:
    """n nearby requests: the model versions that answered, and the workers that did."""
    tags = [f"{prefix}-{i}" for i in range(n)]

    def one(tag: str) -> str | None:
        response = server.get(path, tag)
        assert response.status_code == 200, response.text
        return response.json().get("model")

    with ThreadPoolExecutor(max_workers=6) as pool:
        seen = set(pool.map(one, tags))
    workers = server.wait_for_log(tags)
    return seen, {workers[t] for t in tags}


def test_every_worker_switches_to_a_new_model_within_the_delay(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    train, path = town_trainer(engine)
    ours = this_database(engine)
    models = tmp_path / "models"
    first = artifact.save(train(ours), models)
    env = {"LBS_MODEL_DIR": str(models), "LBS_MODEL_RELOAD_S": str(RELOAD_S)}
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=env) as server:
        server.wait_for_workers(WORKERS)
        seen, workers = versions(server, "first", path)
        assert seen == {artifact.load(first).meta["version"]} and len(workers) == WORKERS

        damaged = models / "model-damaged.npz"
        damaged.write_bytes(b"not a model")
        (models / "CURRENT").write_text(damaged.name + "\n")
        # Every answer for longer than the delay still comes from the good model.
        good = {artifact.load(first).meta["version"]}
        deadline = time.monotonic() + RELOAD_S + MARGIN_S
        rounds = 0
        while time.monotonic() < deadline:
            seen, _ = versions(server, f"damaged-{rounds}", path, n=12)
            assert seen == good
            rounds += 1

        second = artifact.save(train(ours), models)
        written = time.monotonic()
        wanted = {artifact.load(second).meta["version"]}
        rounds = 0
        while True:  # poll until every answer comes from the new model
            seen, workers = versions(server, f"second-{rounds}", path, n=45)
            if seen == wanted and len(workers) == WORKERS:
                break
            assert time.monotonic() - written < RELOAD_S + MARGIN_S, f"still {seen} after the delay"
            rounds += 1


def test_every_worker_refuses_a_model_of_another_database_and_ranks_by_distance(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    train, path = town_trainer(engine)
    models = tmp_path / "models"
    foreign = artifact.save(train("another-database"), models)
    env = {"LBS_MODEL_DIR": str(models), "LBS_MODEL_RELOAD_S": str(RELOAD_S)}
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=env) as server:
        server.wait_for_workers(WORKERS)
        seen, workers = versions(server, "foreign", path)
        rankings = {server.get(path, f"ranking-{i}").json()["ranking"] for i in range(12)}
        ready = server.get("/readyz", "ready")
        assert server.app_log is not None
        log = server.app_log.read_text()

    assert seen == {None} and len(workers) == WORKERS  # no worker used it
    assert rankings == {"distance"}
    assert ready.status_code == 200 and ready.json()["model"] is None
    problem = ready.json()["model_problem"]
    assert f"{foreign.name} was trained on database another-database" in problem
    assert this_database(engine) in problem
    assert log.count(f"model refused, ranking with no model (distance order): {foreign.name}") == WORKERS
