"""Map clusters on the nearby index: the live merchants of a box counted per H3 cell.

A merchant counts in the ancestor, at the cluster resolution, of its cell at the index's
finest resolution (H3's hierarchy, from the cell's bits), at its merchants' mean position.

Reading a whole city merchant by merchant costs a million rows per request. So, per
cluster resolution, the index keeps ``CellTotals``: for each coarsest group, its live
merchants counted per (category, cluster cell) with the sum of their unit vectors, built
on first use and kept current on removal like the groups' counts. A group inside the
box (lbs.geo.h3box) is then read from its few totals; only the rows of groups crossing
the box's edge, and the overlay, are read one by one. The cells with marked merchants
(say, those with a deal) are found from the marked ids, which are few, not by testing
every merchant in the box against them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h3.api.basic_int as h3
import numpy as np

from lbs.geo.distance import FloatArray, latlng_to_xyz
from lbs.geo.h3box import Box, BoxHits, edge_rows, split_groups
from lbs.geo.h3levels import BoolArray, Int8Array, IntArray, ranges

if TYPE_CHECKING:
    from lbs.geo.h3index import NearbyIndex

# Totals are kept for a resolution only when they are at most this share of the rows:
# finer than that, they would cost nearly the rows' memory and save little reading.
_TOTALS_MAX_SHARE = 0.5

# H3 index bits: the resolution in bits 52-55, then one 3-bit digit per resolution
# 1..15 from bit 44 down; the digits past a cell's resolution are all ones (7).
_RES_SHIFT = 52
_RES_MASK = np.int64(0xF) << _RES_SHIFT


def parent_cells(cells: IntArray, resolution: int) -> IntArray:
    """The ancestors at ``resolution`` of cells at that resolution or finer, vectorised
    (h3.cell_to_parent of each, by the bit layout H3 specifies)."""
    unused = np.int64((1 << (3 * (15 - resolution))) - 1)
    return (cells & ~_RES_MASK) | (np.int64(resolution) << _RES_SHIFT) | unused


def cluster_resolution(zoom: int, finest: int) -> int:
    """The H3 resolution whose average edge is nearest (in ratio) to 50 screen pixels at a
    web-map zoom (156,543 m per pixel at zoom 0), at most the index's finest."""
    target_m = 50 * 156_543.03 / 2**zoom
    best = min(range(16), key=lambda r: abs(math.log(h3.average_hexagon_edge_length(r, "m") / target_m)))
    return min(best, finest)


@dataclass(frozen=True)
class Clusters:
    cells: IntArray
    counts: IntArray
    lats: FloatArray  # where the cluster's merchants are on average (not the cell centre)
    lngs: FloatArray
    marked: IntArray  # how many of them are among the marked ids (e.g. with a live deal)


def _counted(cells: IntArray, counts: IntArray, sums: FloatArray) -> tuple[IntArray, IntArray, FloatArray]:
    """Counts and vector sums added up per distinct cell (cells ascending); empty cells dropped."""
    unique, group = np.unique(cells, return_inverse=True)
    # Weighted bincount adds in float64, exact for counts below 2**53.
    totals = np.bincount(group, weights=counts, minlength=len(unique)).astype(np.int64)
    summed = np.empty((len(unique), 3), dtype=np.float64)
    for k in range(3):
        summed[:, k] = np.bincount(group, weights=sums[:, k], minlength=len(unique))
    held = totals > 0
    return unique[held], totals[held], summed[held]


def _ordered(cells: IntArray, counts: IntArray, sums: FloatArray, marked: IntArray) -> Clusters:
    """Biggest first (ties by cell), each at the mean of its merchants' unit vectors."""
    lats = np.degrees(np.arctan2(sums[:, 2], np.hypot(sums[:, 0], sums[:, 1])))
    lngs = np.degrees(np.arctan2(sums[:, 1], sums[:, 0]))
    order = np.lexsort((cells, -counts))
    return Clusters(cells[order], counts[order], lats[order], lngs[order], marked[order])


def _marked_per_cell(cells: IntArray, marked_cells: IntArray) -> IntArray:
    """How many of marked_cells fall in each of cells (ascending; every marked cell among them)."""
    # Sorted and run-length counted first: a binary search per marked merchant (100k of
    # them in a city) into a few thousand cells costs several times more.
    marked = np.zeros(len(cells), dtype=np.int64)
    if not len(marked_cells):
        return marked
    ordered = np.sort(marked_cells)
    firsts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    marked[np.searchsorted(cells, ordered[firsts])] = np.diff(np.append(firsts, len(ordered)))
    return marked


def clusters(hits: BoxHits, resolution: int, marked_ids: IntArray) -> Clusters:
    """Hits counted per H3 cell at ``resolution`` (at most the index's finest), biggest
    first: merchant by merchant, for hits a per-merchant filter has chosen."""
    parents = parent_cells(hits.cells, resolution)
    cells, counts, sums = _counted(
        parents, np.ones(len(parents), dtype=np.int64), latlng_to_xyz(hits.lats, hits.lngs).reshape(-1, 3)
    )
    marked = _marked_per_cell(cells, parents[np.isin(hits.ids, marked_ids)])
    return _ordered(cells, counts, sums, marked)


@dataclass(frozen=True)
class CellTotals:
    """Per coarsest group, its live merchants per cell at one resolution (and per category,
    for queries that filter by category: there are many more entries).

    Group g's entries are ``starts[g]:starts[g + 1]``, ordered by category then cell.
    Counts and sums change in place as merchants leave the snapshot; merchants that join
    go to the index's overlay, which queries read row by row.
    """

    resolution: int
    by_category: bool
    starts: IntArray
    cells: IntArray
    cats: Int8Array  # all 0 unless by_category
    counts: IntArray
    sums: FloatArray  # (entries, 3): the sum of the unit vectors of the entry's merchants

    @classmethod
    def empty(cls, resolution: int) -> CellTotals:
        none = np.zeros(0, dtype=np.int64)
        return cls(resolution, False, none, none, np.zeros(0, np.int8), none, np.zeros((0, 3)))

    def remove(self, group: int, category: int, fine_cell: int, xyz: FloatArray) -> None:
        """Take one merchant of the snapshot out of its entry."""
        a, b = int(self.starts[group]), int(self.starts[group + 1])
        cell = parent_cells(np.array([fine_cell], dtype=np.int64), self.resolution)[0]
        wanted = category if self.by_category else 0
        (entry,) = np.flatnonzero((self.cats[a:b] == wanted) & (self.cells[a:b] == cell)) + a
        self.counts[entry] -= 1
        self.sums[entry] -= xyz


def build_cell_totals(index: NearbyIndex, resolution: int, by_category: bool) -> CellTotals | None:
    """The index's totals at ``resolution`` from its live rows, or None where they would
    not be much smaller than the rows (queries then read rows)."""
    offsets = index._levels[0].offsets
    n_rows = len(index._ids)
    group_of_row = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    parents = parent_cells(index._fine_cells, resolution)
    row_cats = index._cats if by_category else np.zeros(n_rows, dtype=np.int8)
    order = np.lexsort((parents, row_cats, group_of_row))
    parents, cats, groups = parents[order], row_cats[order], group_of_row[order]
    new_entry = np.ones(n_rows, dtype=bool)
    new_entry[1:] = (parents[1:] != parents[:-1]) | (cats[1:] != cats[:-1]) | (groups[1:] != groups[:-1])
    firsts = np.flatnonzero(new_entry)
    if len(firsts) > _TOTALS_MAX_SHARE * n_rows:
        return None
    alive = index._alive[order]
    xyz = index._xyz[order] * alive[:, None]  # tombstoned rows add nothing
    return CellTotals(
        resolution=resolution,
        by_category=by_category,
        starts=np.searchsorted(groups[firsts], np.arange(len(offsets))).astype(np.int64),
        cells=parents[firsts],
        cats=cats[firsts],
        counts=(np.add.reduceat(alive.astype(np.int64), firsts) if n_rows else np.zeros(0, np.int64)),
        sums=(np.add.reduceat(xyz, firsts, axis=0) if n_rows else np.zeros((0, 3))),
    )


def _allowed(categories: Sequence[int] | None, n_categories: int) -> BoolArray | None:
    if categories is None:
        return None
    allowed = np.zeros(max(n_categories, 1 + max(categories, default=0)), dtype=bool)
    allowed[np.asarray(categories, dtype=np.int64)] = True
    return allowed


def _among(ids: IntArray, sorted_ids: IntArray) -> BoolArray:
    """Which of ``ids`` are in ``sorted_ids`` (ascending, unique)."""
    pos = np.searchsorted(sorted_ids, ids)
    found = pos < len(sorted_ids)
    found[found] = sorted_ids[pos[found]] == ids[found]
    return found


def _runs(cells: IntArray, xyz: FloatArray) -> tuple[IntArray, IntArray, FloatArray]:
    """Consecutive rows of the same cell merged: rows come ordered by their H3 cells, so a
    box's rows hold a few long runs per cluster, and counting runs sorts far fewer keys."""
    if not len(cells):
        return cells, np.zeros(0, dtype=np.int64), np.zeros((0, 3))
    starts = np.flatnonzero(np.concatenate([[True], cells[1:] != cells[:-1]]))
    counts = np.diff(np.append(starts, len(cells)))
    return cells[starts], counts, np.add.reduceat(xyz, starts, axis=0)


def clusters_in_box(
    index: NearbyIndex,
    box: Box,
    resolution: int,
    categories: Sequence[int] | None = None,
    marked_ids: IntArray | None = None,
) -> Clusters:
    """The live merchants inside the box (edges included) counted per cell at
    ``resolution``, biggest first; ``marked`` counts those among ``marked_ids`` (sorted,
    unique; any id, in the box or not)."""
    allowed = _allowed(categories, index.n_categories)
    whole, crossing = split_groups(index, box)
    totals = index._totals_at(resolution, by_category=allowed is not None)
    rows = edge_rows(index, box, crossing)
    if totals is None:
        offsets = index._levels[0].offsets
        rows = np.concatenate([ranges(offsets[whole], offsets[whole + 1]), rows])
        entries = np.empty(0, dtype=np.int64)
        totals = CellTotals.empty(resolution)
    else:
        entries = ranges(totals.starts[whole], totals.starts[whole + 1])
        if allowed is not None:
            entries = entries[allowed[totals.cats[entries]]]
    if not index._all_alive:
        rows = rows[index._alive[rows]]
    if allowed is not None:
        rows = rows[allowed[index._cats[rows]]]
    overlay = index._overlay_rows()
    in_overlay = box.contains(overlay.lats, overlay.lngs)
    if allowed is not None:
        in_overlay &= allowed[overlay.cats]
    row_cells = parent_cells(index._fine_cells[rows], resolution)
    run_cells, run_counts, run_sums = _runs(row_cells, index._xyz[rows])
    overlay_cells = parent_cells(overlay.cells[in_overlay], resolution)
    cells, counts, sums = _counted(
        np.concatenate([totals.cells[entries], run_cells, overlay_cells]),
        np.concatenate([totals.counts[entries], run_counts, np.ones(len(overlay_cells), dtype=np.int64)]),
        np.concatenate([totals.sums[entries], run_sums, overlay.xyz[in_overlay]]),
    )

    if marked_ids is None or not len(cells):
        return _ordered(cells, counts, sums, np.zeros(len(cells), dtype=np.int64))
    if not len(entries) and len(rows) <= len(marked_ids):
        # Every merchant counted was read, and they are fewer: look each up among the marked.
        marked_row_cells = row_cells[_among(index._ids[rows], marked_ids)]
    else:
        # Place each marked merchant instead: live, inside the box (a row of a group taken
        # whole passes the same comparisons its group's span did), of a wanted category.
        m_rows = index._live_rows(marked_ids)
        keep = box.contains(index._lat[m_rows], index._lng[m_rows])
        if allowed is not None:
            keep &= allowed[index._cats[m_rows]]
        marked_row_cells = parent_cells(index._fine_cells[m_rows[keep]], resolution)
    marked_overlay_cells = overlay_cells[_among(overlay.ids[in_overlay], marked_ids)]
    marked = _marked_per_cell(cells, np.concatenate([marked_row_cells, marked_overlay_cells]))
    return _ordered(cells, counts, sums, marked)
