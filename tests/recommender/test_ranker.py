"""The trained ranking: it learns a town's habits, each feature moves the score its
documented way, cold starts score, and the model file round-trips atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import artifact, training
from recommender.als import AlsParams
from recommender.evaluation import Case
from recommender.exploration import interleave
from recommender.features import COLUMN, DIRECTION, FEATURES, History
from recommender.model import Model, columns_in, unique_inverse
from recommender.ranker import CASCADE_KEEP, RankerParams
from recommender.synthetic import Town, town

RADIUS_M = 3000.0


@pytest.fixture(scope="module")
def world() -> Town:
    return town()


@pytest.fixture(scope="module")
def model(world: Town) -> Model:
    data = training.Interactions.visits_only(world.users, world.items, world.times)
    return training.train(
        data, world.candidates_of(RADIUS_M), training.TrainParams(ranker=RankerParams(rounds=60))
    )


def test_the_ranking_learns_habits_far_better_than_distance(model: Model) -> None:
    metrics = model.meta["metrics"]
    assert metrics["held_out"]["cases"] >= 50
    assert metrics["held_out"]["all"]["ndcg@10"] > metrics["held_out_distance"]["all"]["ndcg@10"] + 0.3


def test_too_little_history_is_refused_with_the_count(world: Town) -> None:
    few = training.Interactions.visits_only(world.users[:40], world.items[:40], world.times[:40])
    with pytest.raises(training.NotEnoughHistory, match="at least 30"):
        training.train(few, world.candidates_of(RADIUS_M))


rows = st.lists(st.floats(-8, 8, allow_nan=False, width=32), min_size=len(FEATURES), max_size=len(FEATURES))


@settings(max_examples=200, deadline=None)
@given(row=rows, feature=st.sampled_from([f for f in FEATURES if DIRECTION[f] == 1]), step=st.floats(0.01, 5))
def test_a_feature_with_direction_plus_one_never_lowers_the_score(
    model: Model, row: list[float], feature: str, step: float
) -> None:
    x = np.asarray([row, row], dtype=np.float32)
    x[1, COLUMN[feature]] += step
    low, high = model.ranker.scores(x)
    assert high >= low - 1e-12


def test_a_ranker_trained_without_features_never_reads_them(world: Town) -> None:
    data = training.Interactions.visits_only(world.users, world.items, world.times)
    without = ("rating", "reviews", "affinity")
    params = training.TrainParams(ranker=RankerParams(rounds=10, without=without))
    ranker = training.train(data, world.candidates_of(RADIUS_M), params).ranker
    x = np.random.default_rng(3).normal(size=(2 * CASCADE_KEEP, len(FEATURES))).astype(np.float32)
    changed = x.copy()
    changed[:, [COLUMN[f] for f in without]] += 5.0

    assert ranker.booster.feature_name() == [f for f in FEATURES if f not in without]
    assert ranker.describe()["features"] == ranker.booster.feature_name()
    np.testing.assert_array_equal(ranker.scores(changed), ranker.scores(x))
    with pytest.raises(ValueError, match=r"not features: \['stars'\]"):
        RankerParams(without=("stars",)).features()


def test_visiting_a_place_more_raises_it(model: Model, world: Town) -> None:
    """Own history through the whole path: more visits there, higher than before."""
    candidates = world.item_ids[:10]
    distances = np.full(10, 300.0)
    now = float(world.times[-1]) + 3600
    once = model.history([now - 86_400], [candidates[3]])
    often = model.history(np.linspace(now - 30 * 86_400, now - 86_400, 6), [candidates[3]] * 6)
    before = model.score(None, once, None, candidates, distances, now).scores[3]
    after = model.score(None, often, None, candidates, distances, now).scores[3]
    assert after > before


def test_cold_start_scores_new_users_and_new_merchants(model: Model, world: Town) -> None:
    new_merchant = int(world.item_ids.max()) + 1000
    candidates = np.append(world.item_ids[:5], new_merchant)
    scored = model.score(10**9, History.empty(), None, candidates, np.linspace(50, 900, 6), world.times[-1])
    assert np.isfinite(scored.scores).all()
    assert scored.known.tolist() == [True] * 5 + [False]
    for learned in ("popularity", "affinity", "newcomer_popularity", "hour_share"):
        assert scored.value(learned)[-1] == 0.0
    assert (scored.value("affinity") == 0.0).all()  # no factors for an unknown user
    assert (scored.value("never_visited") == 1.0).all()


def test_a_new_merchant_the_user_visited_still_counts_as_visited(model: Model, world: Town) -> None:
    new_a, new_b = int(world.item_ids.max()) + 1, int(world.item_ids.max()) + 2
    history = model.history([1.0, 2.0], [new_a, new_a])
    scored = model.score(None, history, None, [new_a, new_b], [100.0, 100.0], 10.0)
    assert np.expm1(scored.value("own_visits")).round().tolist() == [2.0, 0.0]


def test_the_artifact_round_trips_and_the_pointer_moves_atomically(
    model: Model, world: Town, tmp_path: Path
) -> None:
    assert artifact.current(tmp_path) is None
    first = artifact.save(model, tmp_path)
    second = artifact.save(model, tmp_path)
    assert first != second and artifact.current(tmp_path) == second
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["CURRENT", first.name, second.name])
    loaded = artifact.load(second)
    assert loaded.meta["version"] in second.name and loaded.meta["format"] == artifact.FORMAT
    candidates, distances = world.candidates_of(RADIUS_M)(int(world.item_ids[0]))
    history = model.history(world.times[world.users == 5], world.items[world.users == 5])
    for user in (5, None):
        expected = model.score(user, history, int(world.item_ids[0]), candidates, distances, 2e9).scores
        got = loaded.score(user, history, int(world.item_ids[0]), candidates, distances, 2e9).scores
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_an_artifact_written_before_a_parameter_existed_loads_with_its_default(
    model: Model, tmp_path: Path
) -> None:
    path = artifact.save(model, tmp_path)
    meta = json.loads((path / artifact.META).read_text())
    del meta["als"]["refit_iterations"]
    (path / artifact.META).write_text(json.dumps(meta))

    loaded = artifact.load(path)

    assert loaded.signals.als.params.refit_iterations == AlsParams().refit_iterations
    assert loaded.signals.als.params.factors == model.signals.als.params.factors


def test_a_damaged_artifact_is_refused_not_half_loaded(tmp_path: Path) -> None:
    path = tmp_path / "model-x.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(artifact.ArtifactError, match="not a readable model"):
        artifact.load(path)


def test_exploration_slots_go_to_merchants_without_history() -> None:
    order = np.arange(30)
    fresh = np.zeros(30, dtype=bool)
    fresh[[20, 25]] = True
    mixed = interleave(order, fresh, 0.1).tolist()
    assert sorted(mixed) == list(range(30))
    assert mixed[5] == 20 and mixed[15] == 25  # the 6th and 16th places, best fresh first
    assert [p for p in mixed if not fresh[p]] == [p for p in range(30) if not fresh[p]]
    assert interleave(order, fresh, 0.0).tolist() == list(range(30))
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        interleave(order, fresh, 1.5)


@settings(max_examples=200, deadline=None)
@given(
    fresh=st.lists(st.booleans(), min_size=0, max_size=60),
    share=st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]),
    places=st.integers(0, 70),
    seed=st.integers(0, 1000),
)
def test_the_first_places_of_an_interleaving_are_those_of_the_whole(
    fresh: list[bool], share: float, places: int, seed: int
) -> None:
    order = np.random.default_rng(seed).permutation(len(fresh))
    whole = interleave(order, np.array(fresh, dtype=bool), share).tolist()
    assert sorted(whole) == list(range(len(fresh)))
    assert interleave(order, np.array(fresh, dtype=bool), share, places).tolist() == whole[:places]


@settings(max_examples=100, deadline=None)
@given(
    known=st.sets(st.integers(0, 5000), min_size=1, max_size=200),
    asked=st.lists(st.integers(0, 20_000), max_size=50),
)
def test_the_id_to_column_map_agrees_with_binary_search(known: set[int], asked: list[int]) -> None:
    ids = np.array(sorted(known), dtype=np.int64)
    model = Model.__new__(Model)
    object.__setattr__(model, "item_ids", ids)
    queries = np.array(asked, dtype=np.int64)
    got = model.columns(queries)
    np.testing.assert_array_equal(got, columns_in(ids, queries))
    for q, column in zip(queries.tolist(), got.tolist(), strict=True):
        assert (ids[column] == q) if column >= 0 else (column == -1 - q and q not in known)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-3, 10_000) | st.integers(-(2**40), 2**40), max_size=60))
def test_unique_inverse_is_numpys_dense_or_not(ids: list[int]) -> None:
    """Dense ids go through an id-indexed table, others through np.unique: the same answer."""
    array = np.array(ids, dtype=np.int64)
    unique, inverse = unique_inverse(array)
    want_unique, want_inverse = np.unique(array, return_inverse=True)
    np.testing.assert_array_equal(unique, want_unique)
    np.testing.assert_array_equal(inverse, want_inverse.ravel())


def test_a_big_validation_window_is_thinned_to_the_row_budget(world: Town, model: Model) -> None:
    data = training.Interactions.visits_only(world.users, world.items, world.times)
    rows = model.meta["validation_rows"]
    budget = rows // 3

    thinned = training.train(
        data, world.candidates_of(RADIUS_M), training.TrainParams(max_validation_rows=budget)
    )

    per_case = rows / model.meta["validation_cases"]
    assert thinned.meta["validation_rows"] <= budget + per_case
    assert thinned.meta["validation_rows"] >= budget - 2 * per_case
    assert thinned.meta["validation_cases"] < model.meta["validation_cases"] / 2


def test_small_data_learns_from_several_windows_and_sampled_data_from_fewer(
    world: Town, model: Model
) -> None:
    data = training.Interactions.visits_only(world.users, world.items, world.times)
    assert model.meta["validation_windows"] == 4  # 480 visits a window, all kept

    sampled = training.train(
        data, world.candidates_of(RADIUS_M), training.TrainParams(max_validation_visits=250)
    )

    assert sampled.meta["validation_windows"] == 2  # 4 x 250 visits: two windows of 480
    assert sampled.meta["validation_cases"] < model.meta["validation_cases"] / 2


def test_a_case_with_many_candidates_keeps_the_visited_one_and_distance_order() -> None:
    ids = np.arange(100, 400)
    case = Case(
        user=1, venue=377, time=5.0, origin=100, candidates=ids, distances_m=ids * 10.0, discovery=True
    )

    fewer = training.fewer_candidates(case, 40, seed=1)

    assert len(fewer.candidates) == 40 and 377 in fewer.candidates
    assert np.all(np.diff(fewer.distances_m) > 0)
    np.testing.assert_array_equal(fewer.distances_m, fewer.candidates * 10.0)
    assert training.fewer_candidates(case, 300, seed=1) is case
    assert not np.array_equal(training.fewer_candidates(case, 40, seed=2).candidates, fewer.candidates)


def test_the_cascade_keeps_the_order_of_full_scores_at_the_top(model: Model) -> None:
    """More rows than the cascade keeps: its top rows are the full scores' top rows."""
    rng = np.random.default_rng(6)
    x = rng.normal(0, 3, (500, len(FEATURES))).astype(np.float32)
    full = model.ranker.booster.predict(x, num_threads=1)
    cascade = model.ranker.scores(x)
    assert np.argmax(cascade) == np.argmax(full)
    kept = np.argsort(-cascade)[:CASCADE_KEEP]
    # Every kept row has its full score, and all kept rows rank above the others.
    np.testing.assert_allclose(cascade[kept], full[kept], rtol=1e-12)
    others = np.setdiff1d(np.arange(500), kept)
    assert cascade[kept].min() > cascade[others].max()
