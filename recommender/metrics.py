"""Ranking metrics for one relevant item per case: hit rate, NDCG and reciprocal rank at k."""

from __future__ import annotations

import math
from collections.abc import Iterable


def hit_rate_at(ranks: Iterable[int], k: int) -> float:
    """Share of cases whose relevant item is in the top k (ranks are 0-based)."""
    values = list(ranks)
    return sum(r < k for r in values) / len(values) if values else 0.0


def ndcg_at(ranks: Iterable[int], k: int) -> float:
    """Mean NDCG@k with one relevant item: 1 / log2(rank + 2) inside the top k, else 0."""
    values = list(ranks)
    return sum(1.0 / math.log2(r + 2) for r in values if r < k) / len(values) if values else 0.0


def mean_reciprocal_rank(ranks: Iterable[int]) -> float:
    values = list(ranks)
    return sum(1.0 / (r + 1) for r in values) / len(values) if values else 0.0


def summary(ranks: Iterable[int], k: int = 10) -> dict[str, float]:
    """The three numbers the evaluation reports, under the names result.json uses."""
    values = list(ranks)
    return {
        f"hr@{k}": hit_rate_at(values, k),
        f"ndcg@{k}": ndcg_at(values, k),
        "mrr": mean_reciprocal_rank(values),
    }
