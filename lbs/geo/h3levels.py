"""The layout the nearby index and its search share: groups of H3 cells, level by level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lbs.geo.distance import FloatArray

IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]

# Slack, in chord units of the unit sphere (~6 mm), so that rounding never turns a
# crossing group into an inside or outside one.
EPS = 1e-9


@dataclass
class Level:
    """The groups of one resolution: contiguous row runs, nested in the level above."""

    resolution: int
    offsets: IntArray  # group g owns rows offsets[g]:offsets[g + 1]
    cells: IntArray  # the H3 cell of each group at this resolution
    centres: FloatArray
    rho: FloatArray
    counts: IntArray  # live merchants (level 0: per category, shape (groups, categories))
    children: IntArray  # child groups of g: children[g]:children[g + 1] (not on the finest level)


@dataclass(frozen=True)
class OverlayRows:
    """The writes since the snapshot as arrays, for reads that take the overlay whole."""

    ids: IntArray
    xyz: FloatArray  # (n, 3)
    cats: Int8Array
    lats: FloatArray
    lngs: FloatArray
    cells: IntArray  # at the index's finest resolution


def ranges(starts: IntArray, ends: IntArray) -> IntArray:
    """Concatenation of arange(s, e) for each pair, without a Python loop."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)
