"""The model on disk: every array round-trips and comes back memory-mapped read-only, a
model whose writing failed is never read, and the format-1 .npz and a model saved before
ratings still load."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from recommender import artifact, training
from recommender.features import FEATURES
from recommender.model import Model
from recommender.ranker import Ranker, RankerParams
from recommender.synthetic import Town, town

RADIUS_M = 3000.0


@pytest.fixture(scope="module")
def world() -> Town:
    return town(users=60, visits_per_user=30)


@pytest.fixture(scope="module")
def model(world: Town) -> Model:
    data = training.Interactions.visits_only(world.users, world.items, world.times)
    return training.train(
        data, world.candidates_of(RADIUS_M), training.TrainParams(ranker=RankerParams(rounds=10))
    )


def mapped(array: np.ndarray) -> bool:
    """The array's memory is a file mapping (somewhere down its chain of bases)."""
    base: object = array
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap):
            return True
        base = base.base
    return False


def arrays_of(model: Model) -> dict[str, np.ndarray]:
    s = model.signals
    found = {
        "user_ids": model.user_ids,
        "item_ids": model.item_ids,
        "popularity": s.popularity,
        "newcomers": s.newcomers,
        "hours": s.hours,
        "user_factors": s.als.user_factors,
        "item_factors": s.als.item_factors,
        "rating_average": s.ratings.average,
        "rating_count": s.ratings.count,
        **s.derived(),
    }
    for name in ("transitions", "first_transitions"):
        matrix: csr_matrix = getattr(s, name)
        found |= {
            f"{name}.data": matrix.data,
            f"{name}.indices": matrix.indices,
            f"{name}.indptr": matrix.indptr,
        }
    return found


def scores(model: Model, world: Town) -> np.ndarray:
    origin = int(world.item_ids[0])
    candidates, distances = world.candidates_of(RADIUS_M)(origin)
    history = model.history(world.times[world.users == 5], world.items[world.users == 5])
    return model.score(5, history, origin, candidates, distances, 2e9).scores


def test_every_array_round_trips_memory_mapped_and_read_only(
    model: Model, world: Town, tmp_path: Path
) -> None:
    path = artifact.save(model, tmp_path)

    loaded = artifact.load(path)

    assert path.is_dir() and loaded.meta["format"] == artifact.FORMAT == 2
    want, got = arrays_of(model), arrays_of(loaded)
    assert set(got) == set(want)
    for name, array in got.items():
        np.testing.assert_array_equal(array, want[name], err_msg=name)
        assert array.dtype == want[name].dtype, name
        assert mapped(array), f"{name} was read into memory"
        assert not array.flags.writeable, name
    assert loaded.dense_columns is not None and mapped(loaded.dense_columns)
    assert loaded.signals.transitions.shape == model.signals.transitions.shape
    np.testing.assert_array_equal(scores(loaded, world), scores(model, world))


class _Unwritable(Ranker):
    def to_text(self) -> str:
        raise OSError("disk full")


def test_a_model_whose_writing_failed_is_never_read(model: Model, world: Town, tmp_path: Path) -> None:
    good = artifact.save(model, tmp_path)
    failing = replace(model, ranker=_Unwritable(model.ranker.booster, model.ranker.params))

    with pytest.raises(OSError, match="disk full"):
        artifact.save(failing, tmp_path)  # its arrays were written before the ranker failed

    assert artifact.current(tmp_path) == good
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["CURRENT", good.name])
    np.testing.assert_array_equal(scores(artifact.load(good), world), scores(model, world))


def test_a_model_directory_missing_an_array_is_refused(model: Model, tmp_path: Path) -> None:
    path = artifact.save(model, tmp_path)
    (path / "item_factors.npy").unlink()
    with pytest.raises(artifact.ArtifactError, match="not a readable model"):
        artifact.load(path)


def test_a_truncated_array_is_refused(model: Model, tmp_path: Path) -> None:
    path = artifact.save(model, tmp_path)
    stored = (path / "user_factors.npy").read_bytes()
    (path / "user_factors.npy").write_bytes(stored[: len(stored) // 2])
    with pytest.raises(artifact.ArtifactError, match="not a readable model"):
        artifact.load(path)


def test_a_format_it_does_not_know_is_refused_by_number(model: Model, tmp_path: Path) -> None:
    path = artifact.save(model, tmp_path)
    meta = json.loads((path / artifact.META).read_text())
    (path / artifact.META).write_text(json.dumps({**meta, "format": 3}))
    with pytest.raises(artifact.ArtifactError, match="format 3, expected 2"):
        artifact.load(path)


def write_format_1(model: Model, path: Path) -> None:
    """A model as `lbs train` wrote it before format 2: one .npz."""
    s = model.signals
    meta = {
        **model.meta,
        "format": 1,
        "version": "v1",
        "als": s.als.describe(),
        "ranker": model.ranker.describe(),
    }
    sparse = {}
    for name in ("transitions", "first_transitions"):
        matrix: csr_matrix = getattr(s, name)
        sparse |= {
            f"{name}_data": matrix.data,
            f"{name}_indices": matrix.indices,
            f"{name}_indptr": matrix.indptr,
            f"{name}_shape": np.asarray(matrix.shape),
        }
    np.savez(
        path,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        ranker=np.frombuffer(model.ranker.to_text().encode(), dtype=np.uint8),
        user_ids=model.user_ids,
        item_ids=model.item_ids,
        popularity=s.popularity,
        newcomers=s.newcomers,
        hours=s.hours,
        user_factors=s.als.user_factors,
        item_factors=s.als.item_factors,
        **sparse,
    )


def test_a_format_1_model_still_loads_into_memory(model: Model, world: Town, tmp_path: Path) -> None:
    path = tmp_path / "model-v1.npz"
    write_format_1(model, path)

    loaded = artifact.load(path)

    assert loaded.meta["format"] == 1 and loaded.meta["version"] == "v1"
    assert not mapped(loaded.signals.als.item_factors)
    np.testing.assert_array_equal(scores(loaded, world), scores(model, world))


def test_a_model_loads_only_for_the_data_it_records(model: Model, world: Town, tmp_path: Path) -> None:
    bound = replace(model, meta={**model.meta, "database_id": "db-a"})
    path = artifact.save(bound, tmp_path / "models")
    (tmp_path / "v1").mkdir()
    write_format_1(model, tmp_path / "v1" / "model-v1.npz")  # from before models recorded theirs

    np.testing.assert_array_equal(scores(artifact.load(path, "db-a"), world), scores(model, world))
    assert artifact.load(path).meta["database_id"] == "db-a"  # no id asked: no check
    with pytest.raises(
        artifact.ForeignModel, match=f"^{re.escape(path.name)} was trained on database db-a, not on this one"
    ):
        artifact.load(path, "db-b")
    with pytest.raises(artifact.ForeignModel, match=r"^model-v1\.npz records no database"):
        artifact.load(tmp_path / "v1" / "model-v1.npz", "db-b")


RATING_FEATURES = ("rating", "reviews")


def test_a_model_saved_before_ratings_loads_without_them(world: Town, tmp_path: Path) -> None:
    """As `lbs train` wrote it before ratings: no rating arrays, a ranker of the features of then."""
    data = training.Interactions.visits_only(world.users, world.items, world.times)
    params = training.TrainParams(ranker=RankerParams(rounds=10, without=RATING_FEATURES))
    old = training.train(data, world.candidates_of(RADIUS_M), params)
    path = artifact.save(old, tmp_path)
    for name in ("rating_average", "rating_count"):
        (path / f"{name}.npy").unlink()
    meta = json.loads((path / artifact.META).read_text())
    meta["arrays"] = [name for name in meta["arrays"] if not name.startswith("rating_")]
    del meta["ratings"], meta["ranker"]["without"], meta["ranker"]["features"]
    (path / artifact.META).write_text(json.dumps(meta))

    loaded = artifact.load(path)

    ratings = loaded.signals.ratings
    assert len(ratings.average) == len(ratings.count) == loaded.signals.n_items
    assert not ratings.average.any() and not ratings.count.any() and ratings.prior == 0.0
    assert loaded.ranker.booster.feature_name() == [f for f in FEATURES if f not in RATING_FEATURES]
    np.testing.assert_array_equal(scores(loaded, world), scores(old, world))
