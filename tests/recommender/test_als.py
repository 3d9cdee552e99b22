"""ALS recovers planted structure, and its factors score what they should."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from recommender.als import AlsModel, AlsParams, gpu_available, make_als, train_als

PARAMS = AlsParams(factors=8, regularization=0.01, alpha=10.0, iterations=20, seed=7)


def planted_blocks(rng: np.random.Generator) -> tuple[csr_matrix, np.ndarray]:
    """Two groups of 40 users, each interacting only with its own group of 30 items (70 % of them)."""
    users, items, groups = 80, 60, np.repeat([0, 1], 40)
    dense = np.zeros((users, items), dtype=np.float32)
    for user in range(users):
        own = np.arange(30) + 30 * groups[user]
        dense[user, rng.choice(own, size=21, replace=False)] = 1.0
    return csr_matrix(dense), groups


def block_aucs(model: AlsModel, matrix: csr_matrix, groups: np.ndarray) -> list[float]:
    """Per user: how often an item of its block it never touched outranks one of the other block."""
    aucs = []
    for user in range(matrix.shape[0]):
        seen = set(matrix[user].indices)
        own = [i for i in range(30 * groups[user], 30 * groups[user] + 30) if i not in seen]
        other = list(range(30 * (1 - groups[user]), 30 * (1 - groups[user]) + 30))
        own_scores, other_scores = model.scores(user, own), model.scores(user, other)
        # How often an item of the user's block it never touched outranks one of the other block.
        aucs.append(float((own_scores[:, None] > other_scores[None, :]).mean()))
    return aucs


def test_a_planted_block_is_recovered() -> None:
    matrix, groups = planted_blocks(np.random.default_rng(1))
    model = train_als(matrix, PARAMS, use_gpu=False)

    aucs = block_aucs(model, matrix, groups)

    assert min(aucs) > 0.85 and float(np.mean(aucs)) > 0.97


def test_a_refit_continues_from_earlier_factors() -> None:
    matrix, groups = planted_blocks(np.random.default_rng(4))
    early = matrix.copy()
    early.data[np.random.default_rng(5).random(len(early.data)) < 0.3] = 0.0  # 70 % of the window
    early.eliminate_zeros()
    start = train_als(early, PARAMS, use_gpu=False)
    before = start.user_factors.copy()

    refit = train_als(matrix, replace(PARAMS, refit_iterations=2), use_gpu=False, start=start)

    aucs = block_aucs(refit, matrix, groups)
    assert min(aucs) > 0.85 and float(np.mean(aucs)) > 0.97
    assert np.array_equal(start.user_factors, before)  # the start is copied, not changed
    assert not np.allclose(refit.user_factors, before)  # and the refit did move on from it
    with pytest.raises(ValueError, match="shape"):
        train_als(matrix[:, :50], PARAMS, use_gpu=False, start=start)


def test_factors_have_the_matrix_shape_and_the_backend_is_chosen_once() -> None:
    matrix, _ = planted_blocks(np.random.default_rng(2))
    model = train_als(matrix, PARAMS, use_gpu=False)

    assert model.user_factors.shape[0] == 80 and model.item_factors.shape[0] == 60
    assert model.user_factors.dtype == np.float32
    assert np.allclose(model.scores(3, [0, 5]), model.item_factors[[0, 5]] @ model.user_factors[3])
    assert make_als(PARAMS).__class__.__module__.startswith(
        "implicit.gpu" if gpu_available() else "implicit.cpu"
    )


def test_training_is_reproducible_with_a_seed() -> None:
    matrix, _ = planted_blocks(np.random.default_rng(3))
    first = train_als(matrix, PARAMS, use_gpu=False)
    second = train_als(matrix, PARAMS, use_gpu=False)

    assert np.allclose(first.user_factors, second.user_factors, atol=1e-4)


def test_a_window_too_big_for_the_sweep_budget_gets_proportionally_fewer_sweeps() -> None:
    params = AlsParams(iterations=10, refit_iterations=5, max_row_solves=4_000_000)

    assert params.within_budget(13_000) is params  # foursquare-us: every sweep
    cut = params.within_budget(700_000)  # a 1M-merchant city: 10.5 M wanted
    assert (cut.iterations, cut.refit_iterations) == (4, 2)
    assert cut.factors == params.factors and cut.max_row_solves == params.max_row_solves
    tiny = params.within_budget(10**9)
    assert (tiny.iterations, tiny.refit_iterations) == (1, 1)
