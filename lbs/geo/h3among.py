"""Queries on the nearby index restricted to given merchants (a text search's matches).

When a few merchants are wanted, looking each up by id and testing it against the circle
or the box is cheaper than walking every cell of the area. The tests are the ones the
walks apply to each merchant they read (the squared chord from the stored unit vector,
the box's edges against the stored position), so both ways find the same merchants with
the same distances, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lbs.geo.distance import FloatArray, chord2_to, m_to_chord2, point_to_xyz
from lbs.geo.h3box import Box, BoxHits
from lbs.geo.h3levels import IntArray, OverlayRows

if TYPE_CHECKING:
    from lbs.geo.h3index import NearbyIndex


def rows_among(index: NearbyIndex, merchant_ids: IntArray, categories: Sequence[int] | None) -> OverlayRows:
    """The live merchants among ``merchant_ids`` (unique), of the wanted categories: snapshot
    rows first (in id order when given sorted), then the overlay's."""
    rows = index._live_rows(merchant_ids)
    overlay = index._overlay_rows()
    keep = np.isin(overlay.ids, merchant_ids)
    found = OverlayRows(
        ids=np.concatenate([index._ids[rows], overlay.ids[keep]]),
        xyz=np.concatenate([index._xyz[rows], overlay.xyz[keep]]),
        cats=np.concatenate([index._cats[rows], overlay.cats[keep]]),
        lats=np.concatenate([index._lat[rows], overlay.lats[keep]]),
        lngs=np.concatenate([index._lng[rows], overlay.lngs[keep]]),
        cells=np.concatenate([index._fine_cells[rows], overlay.cells[keep]]),
    )
    if categories is None:
        return found
    wanted = np.isin(found.cats, np.asarray(categories, dtype=np.int8))
    return OverlayRows(
        found.ids[wanted],
        found.xyz[wanted],
        found.cats[wanted],
        found.lats[wanted],
        found.lngs[wanted],
        found.cells[wanted],
    )


def within_among(
    index: NearbyIndex,
    merchant_ids: IntArray,
    lat: float,
    lng: float,
    radius_m: float,
    categories: Sequence[int] | None = None,
) -> tuple[IntArray, FloatArray]:
    """Those of ``merchant_ids`` within radius_m as (ids, chord2), nearest first, ties by id:
    NearbyIndex.within() restricted to them."""
    found = rows_among(index, merchant_ids, categories)
    c2 = chord2_to(found.xyz, point_to_xyz(lat, lng))
    inside = c2 <= m_to_chord2(radius_m)
    ids, c2 = found.ids[inside], c2[inside]
    order = np.lexsort((ids, c2))
    return ids[order], c2[order]


def box_among(
    index: NearbyIndex, merchant_ids: IntArray, box: Box, categories: Sequence[int] | None = None
) -> BoxHits:
    """Those of ``merchant_ids`` inside the box, ids ascending: NearbyIndex.in_box() restricted
    to them."""
    found = rows_among(index, merchant_ids, categories)
    inside = box.contains(found.lats, found.lngs)
    hits = BoxHits(
        found.ids[inside],
        found.lats[inside],
        found.lngs[inside],
        found.cats[inside].astype(np.int64),
        found.cells[inside],
    )
    return hits.where(np.argsort(hits.ids, kind="stable"))
