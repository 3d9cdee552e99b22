"""Interactions to a weighted user x item matrix: event weights, time decay, log scaling.

What counts as a positive, and how much, is configuration (``Weighting``): a visit or a
redemption says more than a claim, a claim more than a click, and an impression without
a click says nothing (it is not a positive). Older interactions count less (half-life).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix, csr_matrix

SECONDS_PER_DAY = 86_400.0


def _default_weights() -> dict[str, float]:
    return {"visit": 4.0, "redemption": 4.0, "claim": 2.0, "click": 1.0, "impression": 0.0}


@dataclass(frozen=True)
class Weighting:
    """How interactions become one number per (user, item)."""

    kinds: Mapping[str, float] = field(default_factory=_default_weights)
    # Days after which an interaction counts half; None: no decay. On foursquare-us a
    # 90-day half-life halved ALS alone (NDCG@10 0.418 -> 0.215): old habits still count.
    half_life_days: float | None = None
    # log1p of the decayed sum, so that the hundredth visit adds less than the second.
    log_scale: bool = True


def interaction_matrix(
    users: npt.ArrayLike,
    items: npt.ArrayLike,
    kinds: npt.ArrayLike,
    times_s: npt.ArrayLike,
    now_s: float,
    shape: tuple[int, int],
    weighting: Weighting | None = None,
) -> csr_matrix:
    """A float32 CSR matrix (users x items) of weighted, decayed, summed interactions.

    ``users`` and ``items`` are row and column indices; ``kinds`` names each
    interaction (a kind missing from the weighting counts zero); ``times_s`` are unix
    seconds, and ``now_s`` the instant decay is measured from.
    """
    weighting = weighting or Weighting()
    rows = np.asarray(users, dtype=np.int64)
    cols = np.asarray(items, dtype=np.int64)
    kind_names = np.asarray(kinds)
    times = np.asarray(times_s, dtype=np.float64)
    if not len(rows) == len(cols) == len(kind_names) == len(times):
        raise ValueError("users, items, kinds and times_s must have the same length")
    values = np.zeros(len(rows), dtype=np.float64)
    for kind, weight in weighting.kinds.items():
        values[kind_names == kind] = weight
    if weighting.half_life_days is not None:
        age_days = np.maximum(now_s - times, 0.0) / SECONDS_PER_DAY
        values *= np.exp2(-age_days / weighting.half_life_days)
    keep = values > 0
    summed = coo_matrix((values[keep], (rows[keep], cols[keep])), shape=shape).tocsr()
    summed.sum_duplicates()
    if weighting.log_scale:
        summed.data = np.log1p(summed.data)
    summed.eliminate_zeros()
    return summed.astype(np.float32)
