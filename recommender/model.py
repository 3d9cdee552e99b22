"""A trained model: signals and ranker over internal indices, plus the id maps around them.

Callers speak their own ids (merchant and user ids); the model maps them to rows and
columns, and an id it has never seen (a new merchant, a new user) maps to "unknown",
for which every learned signal is zero: the cold-start path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from recommender.features import COLUMN, History, features
from recommender.ranker import Ranker
from recommender.signals import FloatArray, IntArray, Signals

# Model.columns uses an id-indexed array while ids stay below this many per item (plus slack).
DENSE_IDS_PER_ITEM = 8
DENSE_IDS_SLACK = 1_000_000


def columns_in(sorted_ids: IntArray, ids: IntArray) -> IntArray:
    """Position of each id in sorted_ids, or -1 - id where it is absent."""
    at = np.searchsorted(sorted_ids, ids)
    clipped = np.minimum(at, max(len(sorted_ids) - 1, 0))
    found = (at < len(sorted_ids)) & (sorted_ids[clipped] == ids) if len(sorted_ids) else at < 0
    return np.where(found, at, -1 - ids).astype(np.int64)


def _dense_enough(top: int, count: int) -> bool:
    return top <= DENSE_IDS_PER_ITEM * count + DENSE_IDS_SLACK


def dense_table(sorted_ids: IntArray) -> npt.NDArray[np.int32] | None:
    """id -> position as an array indexed by id, or None when the ids are negative or
    too sparse to afford it (a gather instead of a binary search per lookup)."""
    if not len(sorted_ids) or sorted_ids[0] < 0 or not _dense_enough(int(sorted_ids[-1]), len(sorted_ids)):
        return None
    table = np.full(int(sorted_ids[-1]) + 1, -1, dtype=np.int32)
    table[sorted_ids] = np.arange(len(sorted_ids), dtype=np.int32)
    return table


def columns_of(sorted_ids: IntArray, dense: npt.NDArray[np.int32] | None, ids: IntArray) -> IntArray:
    """columns_in(sorted_ids, ids), by ``dense`` (dense_table(sorted_ids)) when there is one."""
    if dense is None:
        return columns_in(sorted_ids, ids)
    inside = (ids >= 0) & (ids < len(dense))
    found = np.where(inside, dense[np.where(inside, ids, 0)], -1)
    return np.where(found >= 0, found, -1 - ids).astype(np.int64)


def unique_inverse(ids: IntArray) -> tuple[IntArray, IntArray]:
    """np.unique(ids, return_inverse=True), by a table indexed by id when ids are dense
    (no sort of the millions of interactions a training window holds)."""
    if len(ids) and int(ids.min()) >= 0 and _dense_enough(int(ids.max()), len(ids)):
        present = np.zeros(int(ids.max()) + 1, dtype=bool)
        present[ids] = True
        position = np.cumsum(present) - 1
        return np.flatnonzero(present).astype(np.int64), position[ids].astype(np.int64)
    unique, inverse = np.unique(ids, return_inverse=True)
    return unique.astype(np.int64), inverse.ravel().astype(np.int64)


@dataclass(frozen=True)
class Scored:
    """Scores of the candidates, with the features that produced them (for reasons)."""

    scores: FloatArray  # the ranker's order: see Ranker.scores (boost included)
    features: npt.NDArray[np.float32]
    columns: IntArray  # each candidate's column; negative: unknown to the model

    @property
    def known(self) -> npt.NDArray[np.bool_]:
        """The model has seen the candidate (it has history)."""
        return self.columns >= 0

    def value(self, name: str) -> npt.NDArray[np.float32]:
        return self.features[:, COLUMN[name]]


@dataclass(frozen=True)
class Model:
    signals: Signals
    ranker: Ranker
    user_ids: IntArray  # external user id of each factor row, ascending
    item_ids: IntArray  # external item id of each column, ascending
    meta: dict[str, Any] = field(default_factory=dict)

    def user_row(self, user_id: int | None) -> int | None:
        if user_id is None:
            return None
        at = int(np.searchsorted(self.user_ids, user_id))
        return at if at < len(self.user_ids) and self.user_ids[at] == user_id else None

    def columns(self, item_ids: npt.ArrayLike) -> IntArray:
        """Column of each item (ids are non-negative). One the model has not seen gets -1 - id: negative,
        so no learned signal applies, and still distinct, so own history still counts."""
        return columns_of(self.item_ids, self.dense_columns, np.asarray(item_ids, dtype=np.int64))

    @cached_property
    def dense_columns(self) -> npt.NDArray[np.int32] | None:
        """item id -> column as an array indexed by id (see dense_table), or None."""
        return dense_table(self.item_ids)

    def seed_dense_columns(self, table: npt.NDArray[np.int32] | None) -> None:
        """Use this table (a saved model's, memory-mapped) rather than building one."""
        if table is not None:
            self.__dict__["dense_columns"] = table

    def history(self, times_s: npt.ArrayLike, item_ids: npt.ArrayLike) -> History:
        """A user's visits (any ids) in internal columns, sorted by time."""
        times = np.asarray(times_s, dtype=np.float64)
        order = np.argsort(times, kind="stable")
        return History(times[order], self.columns(item_ids)[order])

    def score(
        self,
        user_id: int | None,
        history: History,
        origin_id: int | None,
        candidate_ids: npt.ArrayLike,
        distances_m: npt.ArrayLike,
        now_s: float,
        boost: npt.ArrayLike | None = None,
    ) -> Scored:
        """Score candidates for a user standing ``distances_m`` from each, at ``now_s``.

        ``history`` comes from history() and holds visits before now_s only; ``boost``
        is added to the model's score of each candidate (the API's deal lift) before the
        ranker's cascade picks whom to score in full.
        """
        columns = self.columns(candidate_ids)
        origin = None if origin_id is None else int(self.columns([origin_id])[0])
        x = features(
            self.signals,
            self.user_row(user_id),
            history,
            origin,
            columns,
            np.asarray(distances_m, dtype=np.float64),
            now_s,
        )
        extra = None if boost is None else np.asarray(boost, dtype=np.float64)
        return Scored(self.ranker.scores(x, extra), x, columns)
