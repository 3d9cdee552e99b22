"""Interactions become a weighted, decayed, log-scaled users x items matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender.interactions import SECONDS_PER_DAY, Weighting, interaction_matrix

NOW = 1_700_000_000.0
FLAT = Weighting(half_life_days=None, log_scale=False)


def test_kinds_weigh_as_configured_and_impressions_are_not_positives() -> None:
    matrix = interaction_matrix(
        users=[0, 0, 1, 1, 1],
        items=[0, 1, 0, 2, 2],
        kinds=["visit", "impression", "click", "claim", "redemption"],
        times_s=[NOW] * 5,
        now_s=NOW,
        shape=(2, 3),
        weighting=FLAT,
    )

    assert matrix.shape == (2, 3) and matrix.dtype == np.float32
    assert matrix.toarray().tolist() == [[4.0, 0.0, 0.0], [1.0, 0.0, 6.0]]
    assert matrix.nnz == 3  # the impression left no stored zero


def test_an_interaction_a_half_life_old_counts_half() -> None:
    weighting = Weighting(half_life_days=30.0, log_scale=False)
    matrix = interaction_matrix(
        [0, 0], [0, 1], ["click", "click"], [NOW, NOW - 30 * SECONDS_PER_DAY], NOW, (1, 2), weighting
    )

    assert matrix.toarray()[0] == pytest.approx([1.0, 0.5])


def test_repeats_add_up_under_a_log() -> None:
    weighting = Weighting(half_life_days=None, log_scale=True)
    matrix = interaction_matrix([0] * 3, [0] * 3, ["visit"] * 3, [NOW] * 3, NOW, (1, 1), weighting)

    assert matrix[0, 0] == pytest.approx(math.log1p(12.0))


def test_unknown_kinds_count_zero_and_lengths_must_agree() -> None:
    matrix = interaction_matrix([0], [0], ["teleport"], [NOW], NOW, (1, 1), FLAT)
    assert matrix.nnz == 0
    with pytest.raises(ValueError, match="same length"):
        interaction_matrix([0, 1], [0], ["visit"], [NOW], NOW, (2, 1))
