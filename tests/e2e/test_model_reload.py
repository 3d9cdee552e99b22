"""A model written while gunicorn runs is in use by every worker within LBS_MODEL_RELOAD_S,
without a restart (the documented delay), and a damaged file never replaces a good one."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from recommender import artifact, training
from recommender.ranker import RankerParams
from recommender.synthetic import town
from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.server import Server, gunicorn
from tests.factories import seed_town

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
    world = town(users=40, visits_per_user=30)
    id_of = seed_town(engine, world)
    item_of = {merchant_id: item for item, merchant_id in id_of.items()}
    items = [id_of[int(i)] for i in world.items]
    data = training.Interactions.visits_only(world.users, items, world.times)

    def candidates(item: int):  # type: ignore[no-untyped-def]
        ids, distances = world.candidates_of(3000)(item_of[item])
        return [id_of[int(i)] for i in ids], distances

    params = training.TrainParams(ranker=RankerParams(rounds=20))
    models = tmp_path / "models"
    first = artifact.save(training.train(data, candidates, params), models)
    path = f"/v1/nearby?lat={world.lats[0]}&lon={world.lons[0]}&radius_m=3000"
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

        second = artifact.save(training.train(data, candidates, params), models)
        written = time.monotonic()
        wanted = {artifact.load(second).meta["version"]}
        rounds = 0
        while True:  # poll until every answer comes from the new model
            seen, workers = versions(server, f"second-{rounds}", path, n=45)
            if seen == wanted and len(workers) == WORKERS:
                break
            assert time.monotonic() - written < RELOAD_S + MARGIN_S, f"still {seen} after the delay"
            rounds += 1
