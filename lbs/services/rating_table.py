"""Every rated merchant's review totals in one process, and the ratings computed from them.

The live index loads the table with itself and keeps it current with the same polls of the
merchant change log (a review that changes a rating bumps its merchant's revision, so
every worker sees it within LBS_INDEX_REFRESH_S). Reads never query: a page's ratings,
min_rating and sort=rating over every merchant in a radius come from here.

The totals are numpy columns, one slot per merchant ever rated; the averages of all of
them (each with its prior, lbs.services.ratings) are computed together, by a few
vectorised passes, the first time they are asked for after a change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import numpy.typing as npt

from lbs.categories import CATEGORY_CODES, N_CATEGORIES
from lbs.services import ratings
from lbs.services.ratings import CITY_RESOLUTION

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# A merchant's totals as read: id, lat, lng, category, review_count, rating_sum, recommend_count.
RatingRow = tuple[int, float, float, str, int, int, int]
_COLUMNS = ("ids", "count", "sum", "recommend", "group", "category")


@dataclass(frozen=True)
class _Computed:
    """The ratings of every slot, computed from one state of the totals."""

    order: IntArray  # slots by merchant id
    sorted_ids: IntArray
    prior: FloatArray
    average: FloatArray  # rounded as shown; NaN: no reviews
    recommend: FloatArray


class RatingTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slot: dict[int, int] = {}
        self._groups: dict[tuple[int, str], int] = {}  # (H3 cell, category) -> group code
        self._cols: dict[str, IntArray] = {name: np.zeros(0, dtype=np.int64) for name in _COLUMNS}
        self._n = 0
        self._computed: _Computed | None = None
        # Slots by merchant id, and the ids in that order: change only when a merchant gets
        # its first review.
        self._order: tuple[IntArray, IntArray] | None = None

    def load(self, rows: Iterable[RatingRow]) -> None:
        """Every merchant's totals, replacing what the table held."""
        fresh = RatingTable()
        fresh.apply(rows)
        with self._lock, fresh._lock:
            self._slot, self._groups, self._cols = fresh._slot, fresh._groups, fresh._cols
            self._n, self._computed, self._order = fresh._n, None, None

    def apply(self, rows: Iterable[RatingRow]) -> None:
        """Merchants' current totals (a moved merchant counts towards its new place's prior)."""
        with self._lock:
            for merchant_id, lat, lng, category, count, total, recommend in rows:
                slot = self._slot.get(merchant_id)
                if slot is None:
                    if count <= 0:
                        continue
                    slot = self._append(merchant_id)
                city = int(h3.str_to_int(h3.latlng_to_cell(lat, lng, CITY_RESOLUTION)))
                group = self._groups.setdefault((city, category), len(self._groups))
                cols = self._cols
                cols["count"][slot], cols["sum"][slot], cols["recommend"][slot] = count, total, recommend
                cols["group"][slot], cols["category"][slot] = group, CATEGORY_CODES[category]
                self._computed = None

    def _append(self, merchant_id: int) -> int:
        if self._n == len(self._cols["ids"]):
            size = max(16, 2 * self._n)
            self._cols = {name: np.resize(col, size) for name, col in self._cols.items()}
        slot = self._n
        self._cols["ids"][slot] = merchant_id
        self._slot[merchant_id] = slot
        self._n += 1
        self._order = None
        return slot

    def _current(self) -> _Computed:
        """The computed ratings of the totals as they are; call with the lock held."""
        if self._computed is None:
            self._computed = self._compute()
        return self._computed

    def _compute(self) -> _Computed:
        n = self._n
        ids, count, total, recommend, group, category = (self._cols[c][:n] for c in _COLUMNS)
        counts, sums = count.astype(np.float64), total.astype(np.float64)
        by_group = (_summed(group, sums, len(self._groups)), _summed(group, counts, len(self._groups)))
        by_category = (_summed(category, sums, N_CATEGORIES), _summed(category, counts, N_CATEGORIES))
        prior = ratings.prior_means(by_group, by_category, (float(sums.sum()), float(counts.sum())))
        average = np.where(count > 0, np.round(ratings.bayesian_averages(sums, counts, prior), 2), np.nan)
        bound = np.round(ratings.wilson_lower_bounds(recommend.astype(np.float64), counts), 2)
        if self._order is None:
            order = np.argsort(ids, kind="stable")
            self._order = (order, ids[order])
        return _Computed(*self._order, prior, average, bound)

    @staticmethod
    def _slots(computed: _Computed, merchant_ids: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """Each merchant's slot, and whether it has one."""
        if not len(computed.sorted_ids):
            return np.zeros(len(merchant_ids), dtype=np.int64), np.zeros(len(merchant_ids), dtype=bool)
        at = np.minimum(np.searchsorted(computed.sorted_ids, merchant_ids), len(computed.sorted_ids) - 1)
        return computed.order[at], computed.sorted_ids[at] == merchant_ids

    def averages(self, merchant_ids: IntArray | Sequence[int]) -> FloatArray:
        """The shown average of each merchant (NaN: no reviews), in the order given."""
        ids = np.asarray(merchant_ids, dtype=np.int64)
        with self._lock:
            computed = self._current()
        slots, found = self._slots(computed, ids)
        out = np.full(len(ids), np.nan)
        out[found] = computed.average[slots[found]]
        return out

    def views(self, merchant_ids: Iterable[int]) -> dict[int, dict[str, Any] | None]:
        """Each merchant's rating as the API shows it (None: no reviews)."""
        wanted = list(merchant_ids)
        views: dict[int, dict[str, Any] | None] = {}
        with self._lock:
            computed = self._current()
            slots, found = self._slots(computed, np.asarray(wanted, dtype=np.int64))
            for merchant_id, slot, known in zip(wanted, slots.tolist(), found.tolist(), strict=True):
                count = int(self._cols["count"][slot]) if known else 0
                views[merchant_id] = None
                if count > 0:
                    views[merchant_id] = {
                        "average": float(computed.average[slot]),
                        "count": count,
                        "recommend": float(computed.recommend[slot]),
                        "mean": round(int(self._cols["sum"][slot]) / count, 2),
                    }
        return views

    def prior_of(self, merchant_id: int) -> float | None:
        """The prior the merchant's average is pulled towards (None: never rated)."""
        with self._lock:
            computed = self._current()
        slots, found = self._slots(computed, np.array([merchant_id], dtype=np.int64))
        return float(computed.prior[slots[0]]) if found[0] else None

    def __len__(self) -> int:
        return self._n


def _summed(codes: IntArray, weights: FloatArray, size: int) -> FloatArray:
    """Each element's total of ``weights`` over the elements sharing its code."""
    totals: FloatArray = np.bincount(codes, weights, minlength=size).astype(np.float64)
    return totals[codes]
