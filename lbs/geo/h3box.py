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
    ids: IntArray  # ascending
    lats: FloatArray
    lngs: FloatArray
    categories: IntArray


def box_hits(index: NearbyIndex, box: Box, categories: Sequence[int] | None = None) -> BoxHits:
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
    if index._overlay:
        values = list(index._overlay.values())
        o_ids = np.array(list(index._overlay), dtype=np.int64)
        o_lat = np.array([v[4] for v in values], dtype=np.float64)
        o_lng = np.array([v[5] for v in values], dtype=np.float64)
        o_cat = np.array([v[3] for v in values], dtype=np.int64)
        keep = box.contains(o_lat, o_lng)
        ids, lats, lngs, cats = (
            np.concatenate([a, b[keep]])
            for a, b in ((ids, o_ids), (lats, o_lat), (lngs, o_lng), (cats, o_cat))
        )
    if categories is not None:
        wanted = np.isin(cats, np.asarray(categories, dtype=np.int64))
        ids, lats, lngs, cats = ids[wanted], lats[wanted], lngs[wanted], cats[wanted]
    order = np.argsort(ids, kind="stable")
    return BoxHits(ids[order], lats[order], lngs[order], cats[order])
