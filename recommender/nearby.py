"""A case's candidates read by position: everything within the radius of an origin, in the
source's order (nearest first, ties by id, when it is the nearby index), of which a
training case keeps the visited one and a random few.

A source that lists its candidates (a CandidateSource: origin -> ids, distances) is read
as listed. One that knows an ordering key (Keyed: ids in any order, the key that sorts
them) gives the few by rank without sorting the many: a dense city has 30,000 merchants
within 2 km of a place, and a training case keeps 100 of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# origin id -> (ids within the radius, their distances in metres), in the source's order
CandidateSource = Callable[[int], tuple[IntArray, FloatArray]]

# Keyed.take sorts only the bins that hold a wanted rank, of about this many rows each.
ROWS_PER_BIN = 16


class Nearby(Protocol):
    """The candidates around one origin, in an order, addressed by position in it."""

    def __len__(self) -> int: ...

    def position(self, item: int) -> int:
        """Where ``item`` is in the order; -1 if it is not a candidate."""
        ...

    def take(self, positions: IntArray) -> tuple[IntArray, FloatArray]:
        """(ids, distances in metres) at ``positions`` (ascending, distinct), in that order."""
        ...


@runtime_checkable
class NearbySource(Protocol):
    """A source of candidates that can give a few of many without listing them all."""

    def nearby(self, origin: int) -> Nearby: ...


@dataclass(frozen=True)
class Listed:
    """Candidates as listed by a CandidateSource."""

    ids: IntArray
    distances_m: FloatArray

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, item: int) -> int:
        at = np.flatnonzero(self.ids == item)
        return int(at[0]) if len(at) else -1

    def take(self, positions: IntArray) -> tuple[IntArray, FloatArray]:
        return self.ids[positions], self.distances_m[positions]


@dataclass(frozen=True)
class Keyed:
    """Candidates in any order, ordered by (key, id) ascending; ``to_m`` turns keys into metres."""

    ids: IntArray  # distinct
    keys: FloatArray
    to_m: Callable[[FloatArray], FloatArray]

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, item: int) -> int:
        at = np.flatnonzero(self.ids == item)
        if not len(at):
            return -1
        key = self.keys[at[0]]
        return int(
            np.count_nonzero(self.keys < key) + np.count_nonzero((self.keys == key) & (self.ids < item))
        )

    def take(self, positions: IntArray) -> tuple[IntArray, FloatArray]:
        if len(positions) == len(self.ids):
            rows = np.lexsort((self.ids, self.keys))
        else:
            rows = self._rows_at(positions)
        return self.ids[rows], self.to_m(self.keys[rows])

    def _rows_at(self, positions: IntArray) -> IntArray:
        """The rows at these ranks without sorting them all: the keys fall into bins of
        equal width (a monotone map, so equal keys share a bin and a lower bin holds only
        lower keys); the bins' counts say which bins hold the wanted ranks, and only the
        rows of those bins are sorted by (key, id)."""
        if not len(positions):
            return np.empty(0, dtype=np.int64)
        n_bins = max(1, len(self.keys) // ROWS_PER_BIN)
        low, high = float(self.keys.min()), float(self.keys.max())
        scale = n_bins / (high - low) if high > low else 0.0
        shifted = self.keys - low
        shifted *= scale
        bins = shifted.astype(np.int64)
        np.minimum(bins, n_bins - 1, out=bins)
        counts = np.bincount(bins, minlength=n_bins)
        before = np.cumsum(counts) - counts
        # The bin of each wanted rank: the last bin whose first rank is at or before it.
        wanted = np.zeros(n_bins, dtype=bool)
        wanted[np.searchsorted(before, positions, side="right") - 1] = True
        rows = np.flatnonzero(wanted[bins])
        rows = rows[_by_key_then_id(self.keys[rows], self.ids[rows])]  # bins ascend with keys
        row_bins = bins[rows]
        index = np.arange(len(rows))
        starts = np.r_[True, row_bins[1:] != row_bins[:-1]]
        rank = before[row_bins] + index - np.maximum.accumulate(np.where(starts, index, 0))
        return rows[np.searchsorted(rank, positions)]


def _by_key_then_id(keys: FloatArray, ids: IntArray) -> IntArray:
    """np.lexsort((ids, keys)), by a plain argsort when no two keys are equal (the usual
    case, four times faster)."""
    order = np.argsort(keys)
    ordered = keys[order]
    if (ordered[1:] == ordered[:-1]).any():
        return np.lexsort((ids, keys))
    return order


def sampled_positions(n: int, at: int, limit: int, rng: np.random.Generator) -> IntArray:
    """Position ``at`` and ``limit - 1`` others of ``n`` drawn by ``rng``, ascending: the
    draw that rng.choice over the others' positions makes, without listing them."""
    drawn = rng.choice(n - 1, limit - 1, replace=False)
    return np.sort(np.r_[at, drawn + (drawn >= at)]).astype(np.int64)


def nearby_of(source: CandidateSource | NearbySource) -> Callable[[int], Nearby]:
    """origin -> its Nearby, whichever kind of source."""
    if isinstance(source, NearbySource):
        return source.nearby
    listing = source

    def listed(origin: int) -> Nearby:
        ids, distances = listing(origin)
        return Listed(np.asarray(ids, dtype=np.int64), np.asarray(distances, dtype=np.float64))

    return listed
