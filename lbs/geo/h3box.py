"""Box queries on the nearby index: every live merchant inside a lat/lng box, exactly.

Each coarsest group of the index carries the box its merchants span (lbs.geo.h3index).
A group whose span lies inside the query box is taken whole, one that misses it is
skipped, and only the rows of groups crossing an edge are compared one by one, against
the positions as stored (no projection, so nothing is lost to rounding). A box with
min_lng > max_lng crosses the antimeridian: it is [min_lng, 180] and [-180, max_lng].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lbs.geo.distance import FloatArray
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


def split_groups(index: NearbyIndex, box: Box) -> tuple[IntArray, IntArray]:
    """The coarsest groups whose span lies inside the box, and those crossing its edge."""
    spans = index._group_boxes  # (groups, 4): min lat, max lat, min lng, max lng
    lat_whole = (spans[:, 0] >= box.min_lat) & (spans[:, 1] <= box.max_lat)
    lat_touch = (spans[:, 1] >= box.min_lat) & (spans[:, 0] <= box.max_lat)
    lng_whole = np.zeros(len(spans), dtype=bool)
    lng_touch = np.zeros(len(spans), dtype=bool)
    for lo, hi in box.lng_spans:
        # A group's span is one interval, so it lies inside the union only inside one part.
        lng_whole |= (spans[:, 2] >= lo) & (spans[:, 3] <= hi)
        lng_touch |= (spans[:, 3] >= lo) & (spans[:, 2] <= hi)
    whole = lat_whole & lng_whole
    return np.flatnonzero(whole), np.flatnonzero(lat_touch & lng_touch & ~whole)


def edge_rows(index: NearbyIndex, box: Box, crossing: IntArray) -> IntArray:
    """The rows of crossing groups whose stored position is inside the box (dead ones too)."""
    offsets = index._levels[0].offsets
    rows = ranges(offsets[crossing], offsets[crossing + 1])
    return rows[box.contains(index._lat[rows], index._lng[rows])]


def box_hits(
    index: NearbyIndex, box: Box, categories: Sequence[int] | None = None, *, by_id: bool = True
) -> BoxHits:
    whole, crossing = split_groups(index, box)
    offsets = index._levels[0].offsets
    rows = np.concatenate([ranges(offsets[whole], offsets[whole + 1]), edge_rows(index, box, crossing)])
    if not index._all_alive:
        rows = rows[index._alive[rows]]
    overlay = index._overlay_rows()
    keep = box.contains(overlay.lats, overlay.lngs)
    hits = BoxHits(
        np.concatenate([index._ids[rows], overlay.ids[keep]]),
        np.concatenate([index._lat[rows], overlay.lats[keep]]),
        np.concatenate([index._lng[rows], overlay.lngs[keep]]),
        np.concatenate([index._cats[rows], overlay.cats[keep]]).astype(np.int64),
        np.concatenate([index._fine_cells[rows], overlay.cells[keep]]),
    )
    if categories is not None:
        hits = hits.where(np.isin(hits.categories, np.asarray(categories, dtype=np.int64)))
    return hits.where(np.argsort(hits.ids, kind="stable")) if by_id else hits
