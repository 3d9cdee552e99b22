"""What a training window teaches about places, fitted once and read per request.

From the visits of a window (user, item, time): how popular each item is, how often it is
someone's first visit there ("where newcomers go"), where people go next from each item
(transitions between a user's consecutive visits, and those that were a first visit),
how an item's visits spread over the hours of the day, and ALS factors from the weighted
interaction matrix; beside them, the items' review ratings of the same window
(ratings.py). The ranking features (features.py) read these per candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix, csr_matrix

from recommender.als import AlsModel, AlsParams, train_als
from recommender.ratings import Ratings

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

HOURS = 24
# Signals' cached properties: computed from the fitted arrays, saved beside them.
DERIVED = ("item_norms", "item_units", "hour_totals", "moves_from")
SECONDS_PER_HOUR = 3600.0


def hour_of_day(times_s: npt.ArrayLike) -> IntArray:
    """UTC hour of unix seconds. UTC on both sides: an item keeps its zone, so its
    share of visits per UTC hour says the same as per local hour."""
    return (np.floor_divide(np.asarray(times_s, dtype=np.float64), SECONDS_PER_HOUR) % HOURS).astype(np.int64)


@dataclass(frozen=True)
class Visits:
    """Visits sorted by time (stable)."""

    users: IntArray
    items: IntArray
    times: FloatArray

    @classmethod
    def of(cls, users: npt.ArrayLike, items: npt.ArrayLike, times: npt.ArrayLike) -> Visits:
        t = np.asarray(times, dtype=np.float64)
        order = np.argsort(t, kind="stable")
        return cls(
            np.asarray(users, dtype=np.int64)[order], np.asarray(items, dtype=np.int64)[order], t[order]
        )

    def __len__(self) -> int:
        return len(self.times)

    def first_visit(self) -> npt.NDArray[np.bool_]:
        """True where the user had not visited the item earlier in these visits."""
        pairs = self.users * (int(self.items.max(initial=0)) + 1) + self.items
        by_pair = np.argsort(pairs, kind="stable")  # time order kept per pair
        sorted_pairs = pairs[by_pair]
        mask = np.empty(len(pairs), dtype=bool)
        mask[by_pair] = np.r_[True, sorted_pairs[1:] != sorted_pairs[:-1]]
        return mask

    def steps(self, first: npt.NDArray[np.bool_]) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_]]:
        """(from, to, to-is-a-first-visit) for each user's consecutive visits, given
        first_visit() of these visits."""
        by_user = np.argsort(self.users, kind="stable")  # time order kept per user
        users, items = self.users[by_user], self.items[by_user]
        first = first[by_user]
        same = users[1:] == users[:-1]
        return items[:-1][same], items[1:][same], first[1:][same]


def _pair_counts(rows: IntArray, cols: IntArray, n_items: int) -> csr_matrix:
    counts = coo_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_items, n_items)
    ).tocsr()
    counts.sum_duplicates()
    counts.sort_indices()
    return counts


@dataclass(frozen=True)
class Signals:
    popularity: npt.NDArray[np.float32]  # visits per item
    newcomers: npt.NDArray[np.float32]  # first visits per item
    transitions: csr_matrix  # item x item: visits to the column right after the row
    first_transitions: csr_matrix  # the same, counting only first visits to the column
    hours: npt.NDArray[np.float32]  # item x 24: visits per UTC hour
    als: AlsModel
    ratings: Ratings  # reviews per item: Bayesian average and count

    @cached_property
    def item_norms(self) -> npt.NDArray[np.float32]:
        """Length of each item's ALS factors (floored: an all-zero row has cosine 0)."""
        return np.maximum(np.linalg.norm(self.als.item_factors, axis=1), 1e-9).astype(np.float32)

    @cached_property
    def item_units(self) -> npt.NDArray[np.float32]:
        """ALS item factors scaled to unit length (cosine similarity by dot product)."""
        return np.ascontiguousarray(self.als.item_factors / self.item_norms[:, None], dtype=np.float32)

    @cached_property
    def hour_totals(self) -> npt.NDArray[np.float32]:
        """Visits per item over all hours."""
        return self.hours.sum(axis=1)

    @cached_property
    def moves_from(self) -> npt.NDArray[np.float32]:
        """Moves out of each item (row sums of transitions)."""
        return np.asarray(self.transitions.sum(axis=1), dtype=np.float32).ravel()

    def derived(self) -> dict[str, np.ndarray]:
        """The arrays computed from the fitted ones (cached on first use), by name."""
        return {name: getattr(self, name) for name in DERIVED}

    def seed_derived(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Use these arrays (of derived(), e.g. a saved model's, memory-mapped) instead
        of computing them again: a cached property reads the instance's dict first."""
        unknown = set(arrays) - set(DERIVED)
        if unknown:
            raise ValueError(f"not derived arrays: {sorted(unknown)}")
        self.__dict__.update(arrays)

    @property
    def n_items(self) -> int:
        return len(self.popularity)

    @property
    def n_users(self) -> int:
        return len(self.als.user_factors)

    @classmethod
    def fit(
        cls,
        visits: Visits,
        interactions: csr_matrix,
        als_params: AlsParams | None = None,
        use_gpu: bool | None = None,
        als_start: AlsModel | None = None,
        als_threads: int = 0,
        ratings: Ratings | None = None,
    ) -> Signals:
        """Fit on a window's visits; ALS on ``interactions`` (users x items, see
        interactions.py), continuing from ``als_start`` if given, on ``als_threads`` (see
        train_als); ``ratings`` of the items from the window's reviews (None: none)."""
        n_items = interactions.shape[1]
        first = visits.first_visit()
        popularity = np.bincount(visits.items, minlength=n_items).astype(np.float32)
        newcomers = np.bincount(visits.items[first], minlength=n_items).astype(np.float32)
        origins, nexts, next_first = visits.steps(first)
        cells = visits.items * HOURS + hour_of_day(visits.times)
        hours = np.bincount(cells, minlength=n_items * HOURS).astype(np.float32).reshape(n_items, HOURS)
        return cls(
            popularity=popularity,
            newcomers=newcomers,
            transitions=_pair_counts(origins, nexts, n_items),
            first_transitions=_pair_counts(origins[next_first], nexts[next_first], n_items),
            hours=hours,
            als=train_als(interactions, als_params, use_gpu, als_start, als_threads),
            ratings=ratings or Ratings.empty(n_items),
        )


def row_values(matrix: csr_matrix, row: int, cols: IntArray) -> npt.NDArray[np.float32]:
    """matrix[row, cols] as a dense vector, by binary search in the row's sorted indices."""
    out = np.zeros(len(cols), dtype=np.float32)
    if not 0 <= row < matrix.shape[0]:
        return out
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    if start == end:
        return out
    indices = matrix.indices[start:end]
    at = np.searchsorted(indices, cols)
    at_clipped = np.minimum(at, len(indices) - 1)
    found = indices[at_clipped] == cols
    out[found] = matrix.data[start:end][at_clipped[found]]
    return out
