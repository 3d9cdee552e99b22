"""A model is bound to the database it was trained on (issue 17, bug 1): a worker refuses a
model of another database, or one that records none, says so in its log and in /readyz,
and ranks by distance (or with the model it held before) instead."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, update

from lbs.models import DatabaseIdentity
from recommender import artifact
from tests.factories import this_database, town_trainer


def test_a_model_of_another_database_is_refused_with_a_log_line_and_readyz_detail(
    engine: Engine, make_app: Callable[..., OpenAPI], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train, path = town_trainer(engine)
    models = tmp_path / "models"
    foreign = artifact.save(train("a-database-elsewhere"), models)
    client = make_app(model_dir=str(models), model_reload_s=0.0).test_client()

    with caplog.at_level(logging.ERROR, logger="lbs.services.relevance"):
        page = client.get(path).get_json()
        ready = client.get("/readyz").get_json()

    assert page["ranking"] == "distance" and "model" not in page
    assert ready["model"] is None
    assert ready["model_problem"] == (
        f"refused: {foreign.name} was trained on database a-database-elsewhere, not on this one "
        f"({this_database(engine)}); train one on this database (lbs train), or point LBS_MODEL_DIR "
        "at this database's models"
    )
    refusals = [r.getMessage() for r in caplog.records if "model refused" in r.getMessage()]
    assert refusals == [
        f"model refused, ranking with no model (distance order): {ready['model_problem'][9:]}"
    ]

    mine = artifact.save(train(this_database(engine)), models)  # the operator trains here
    page = client.get(path).get_json()
    ready = client.get("/readyz").get_json()
    assert page["ranking"] == "relevance" and page["model"] == mine.name.removeprefix("model-")
    assert ready["model"] == page["model"] and ready["model_problem"] is None


def test_a_worker_keeps_its_own_model_when_another_databases_model_becomes_current(
    engine: Engine, make_app: Callable[..., OpenAPI], tmp_path: Path
) -> None:
    train, path = town_trainer(engine)
    models = tmp_path / "models"
    mine = artifact.save(train(this_database(engine)), models)
    client = make_app(model_dir=str(models), model_reload_s=0.0).test_client()
    assert client.get(path).get_json()["model"] == mine.name.removeprefix("model-")

    artifact.save(train("a-database-elsewhere"), models)  # another deployment shares the directory

    page = client.get(path).get_json()
    ready = client.get("/readyz").get_json()
    assert page["ranking"] == "relevance" and page["model"] == mine.name.removeprefix("model-")
    assert ready["model"] == page["model"] and "a-database-elsewhere" in ready["model_problem"]


def test_a_model_that_records_no_database_is_refused(
    engine: Engine, make_app: Callable[..., OpenAPI], tmp_path: Path
) -> None:
    train, path = town_trainer(engine)
    model = train("unused")
    del model.meta["database_id"]  # as every model written before models were bound
    unbound = artifact.save(model, tmp_path / "models")
    client = make_app(model_dir=str(tmp_path / "models"), model_reload_s=0.0).test_client()

    assert client.get(path).get_json()["ranking"] == "distance"
    assert client.get("/readyz").get_json()["model_problem"] == (
        f"refused: {unbound.name} records no database (trained before models were bound to theirs); "
        "train one on this database (lbs train)"
    )


def test_a_database_reset_under_a_running_worker_is_read_again_for_the_next_model(
    engine: Engine, make_app: Callable[..., OpenAPI], tmp_path: Path
) -> None:
    train, path = town_trainer(engine)
    models = tmp_path / "models"
    artifact.save(train(this_database(engine)), models)
    client = make_app(model_dir=str(models), model_reload_s=0.0).test_client()
    assert client.get(path).get_json()["ranking"] == "relevance"

    # `lbs demo --reset` or a restore under the running server: the database's id changes,
    # and the model trained next records the new one.
    with engine.begin() as conn:
        conn.execute(update(DatabaseIdentity).values(database_id="after-the-reset"))
    retrained = artifact.save(train("after-the-reset"), models)

    page = client.get(path).get_json()
    assert page["ranking"] == "relevance" and page["model"] == retrained.name.removeprefix("model-")
    assert client.get("/readyz").get_json()["model_problem"] is None
