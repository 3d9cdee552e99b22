"""Box queries on the nearby index: every live merchant inside a lat/lng box, exactly.

Each coarsest group of the index carries the box its merchants span (lbs.geo.h3index).
A group whose span lies inside the query box is taken whole, one that misses it is
skipped, and only the rows of groups crossing an edge are compared one by one, against
the positions as stored (no projection, so nothing is lost to rounding). A box with
min_lng > max_lng crosses the antimeridian: it is [min_lng, 180] and [-180, max_lng].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h3.api.basic_int as h3
import numpy as np

from lbs.geo.distance import FloatArray, latlng_to_xyz
from lbs.geo.h3levels import BoolArray, IntArray, ranges

if TYPE_CHECKING:
    from lbs.geo.h3index import NearbyIndex


@dataclass(frozen=True)
class Box:
    """Edges in degrees (WGS84), inclusive; min_lng > max_lng wraps across the antimeridian."""

    min_lng: float
    min_lat: float
    max_lng: float
    max_lat: float

    @property
    def lng_spans(self) -> tuple[tuple[float, float], ...]:
        if self.min_lng <= self.max_lng:
            return ((self.min_lng, self.max_lng),)
        return ((self.min_lng, 180.0), (-180.0, self.max_lng))

    def contains(self, lat: FloatArray, lng: FloatArray) -> BoolArray:
        inside_lng = np.zeros(len(lng), dtype=bool)
        for lo, hi in self.lng_spans:
            inside_lng |= (lng >= lo) & (lng <= hi)
        return (lat >= self.min_lat) & (lat <= self.max_lat) & inside_lng


@dataclass(frozen=True)
class BoxHits:
    ids: IntArray  # ascending, unless asked for in index order
    lats: FloatArray
    lngs: FloatArray
    categories: IntArray
    cells: IntArray  # H3 cell at the index's finest resolution

    def where(self, keep: BoolArray | IntArray) -> BoxHits:
        """The hits selected by a mask or an index array."""
        return BoxHits(
            self.ids[keep], self.lats[keep], self.lngs[keep], self.categories[keep], self.cells[keep]
        )


def box_hits(
    index: NearbyIndex, box: Box, categories: Sequence[int] | None = None, *, by_id: bool = True
) -> BoxHits:
    spans = index._group_boxes  # (groups, 4): min lat, max lat, min lng, max lng
    offsets = index._levels[0].offsets
    lat_whole = (spans[:, 0] >= box.min_lat) & (spans[:, 1] <= box.max_lat)
    lat_touch = (spans[:, 1] >= box.min_lat) & (spans[:, 0] <= box.max_lat)
    lng_whole = np.zeros(len(spans), dtype=bool)
    lng_touch = np.zeros(len(spans), dtype=bool)
    for lo, hi in box.lng_spans:
        # A group's span is one interval, so it lies inside the union only inside one part.
        lng_whole |= (spans[:, 2] >= lo) & (spans[:, 3] <= hi)
        lng_touch |= (spans[:, 3] >= lo) & (spans[:, 2] <= hi)
    whole = np.flatnonzero(lat_whole & lng_whole)
    crossing = np.flatnonzero(lat_touch & lng_touch & ~(lat_whole & lng_whole))
    edge_rows = ranges(offsets[crossing], offsets[crossing + 1])
    rows = np.concatenate(
        [
            ranges(offsets[whole], offsets[whole + 1]),
            edge_rows[box.contains(index._lat[edge_rows], index._lng[edge_rows])],
        ]
    )
    if not index._all_alive:
        rows = rows[index._alive[rows]]
    ids = index._ids[rows]
    lats, lngs = index._lat[rows], index._lng[rows]
    cats = index._cats[rows].astype(np.int64)
    cells = index._fine_cells[rows]
    if index._overlay:
        values = list(index._overlay.values())
        o_ids = np.array(list(index._overlay), dtype=np.int64)
        o_lat = np.array([v[4] for v in values], dtype=np.float64)
        o_lng = np.array([v[5] for v in values], dtype=np.float64)
        o_cat = np.array([v[3] for v in values], dtype=np.int64)
        keep = box.contains(o_lat, o_lng)
        fine = index.resolutions[-1]
        o_cells = np.array(
            [
                h3.latlng_to_cell(a, b, fine)
                for a, b in zip(o_lat[keep].tolist(), o_lng[keep].tolist(), strict=True)
            ],
            dtype=np.int64,
        )
        ids, lats, lngs, cats = (
            np.concatenate([a, b[keep]])
            for a, b in ((ids, o_ids), (lats, o_lat), (lngs, o_lng), (cats, o_cat))
        )
        cells = np.concatenate([cells, o_cells])
    hits = BoxHits(ids, lats, lngs, cats, cells)
    if categories is not None:
        hits = hits.where(np.isin(cats, np.asarray(categories, dtype=np.int64)))
    return hits.where(np.argsort(hits.ids, kind="stable")) if by_id else hits


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
    marked: IntArray  # how many of them are in the mark given (e.g. with a live deal)


def clusters(hits: BoxHits, resolution: int, mark: BoolArray) -> Clusters:
    """Hits counted per H3 cell at ``resolution`` (at most the index's finest), biggest first."""
    parents = parent_cells(hits.cells, resolution)
    cells, group, counts = np.unique(parents, return_inverse=True, return_counts=True)
    xyz = latlng_to_xyz(hits.lats, hits.lngs)
    sums = np.column_stack([np.bincount(group, weights=xyz[:, k], minlength=len(cells)) for k in range(3)])
    lats = np.degrees(np.arctan2(sums[:, 2], np.hypot(sums[:, 0], sums[:, 1])))
    lngs = np.degrees(np.arctan2(sums[:, 1], sums[:, 0]))
    marked = np.bincount(group, weights=mark.astype(np.float64), minlength=len(cells)).astype(np.int64)
    order = np.lexsort((cells, -counts))
    return Clusters(cells[order], counts[order].astype(np.int64), lats[order], lngs[order], marked[order])
