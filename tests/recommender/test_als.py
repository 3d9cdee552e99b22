"""ALS recovers planted structure, and its factors score what they should."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from recommender.als import AlsParams, gpu_available, make_als, train_als

PARAMS = AlsParams(factors=8, regularization=0.01, alpha=10.0, iterations=20, seed=7)


def planted_blocks(rng: np.random.Generator) -> tuple[csr_matrix, np.ndarray]:
    """Two groups of 40 users, each interacting only with its own group of 30 items (70 % of them)."""
    users, items, groups = 80, 60, np.repeat([0, 1], 40)
    dense = np.zeros((users, items), dtype=np.float32)
    for user in range(users):
        own = np.arange(30) + 30 * groups[user]
        dense[user, rng.choice(own, size=21, replace=False)] = 1.0
    return csr_matrix(dense), groups


def test_a_planted_block_is_recovered() -> None:
    matrix, groups = planted_blocks(np.random.default_rng(1))
    model = train_als(matrix, PARAMS, use_gpu=False)

    aucs = []
    for user in range(matrix.shape[0]):
        seen = set(matrix[user].indices)
        own = [i for i in range(30 * groups[user], 30 * groups[user] + 30) if i not in seen]
        other = list(range(30 * (1 - groups[user]), 30 * (1 - groups[user]) + 30))
        own_scores, other_scores = model.scores(user, own), model.scores(user, other)
        # How often an item of the user's block it never touched outranks one of the other block.
        aucs.append(float((own_scores[:, None] > other_scores[None, :]).mean()))
        assert own_scores.mean() > other_scores.mean()

    assert min(aucs) > 0.85 and float(np.mean(aucs)) > 0.97


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
