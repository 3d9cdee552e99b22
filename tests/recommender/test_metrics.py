"""Ranking metrics with one relevant item, checked against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from recommender.metrics import hit_rate_at, mean_reciprocal_rank, ndcg_at, summary

# 0-based ranks of the relevant item in four cases: first, third, tenth, twelfth.
RANKS = [0, 2, 9, 11]


def test_by_hand() -> None:
    assert hit_rate_at(RANKS, 10) == 0.75
    assert ndcg_at(RANKS, 10) == pytest.approx((1 + 1 / 2 + 1 / math.log2(11)) / 4)
    assert mean_reciprocal_rank(RANKS) == pytest.approx((1 + 1 / 3 + 1 / 10 + 1 / 12) / 4)


def test_summary_uses_the_names_result_json_uses() -> None:
    assert set(summary(RANKS)) == {"hr@10", "ndcg@10", "mrr"}
    assert summary([]) == {"hr@10": 0.0, "ndcg@10": 0.0, "mrr": 0.0}
