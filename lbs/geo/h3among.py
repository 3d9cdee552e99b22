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
from lbs.geo.h3levels import BoolArray, IntArray, OverlayRows

if TYPE_CHECKING:
    from lbs.geo.h3index import NearbyIndex


def _rows_among(index: NearbyIndex, merchant_ids: IntArray) -> tuple[IntArray, OverlayRows, BoolArray]:
    """The live snapshot rows of ``merchant_ids`` (sorted, unique), and the overlay with a
    mask of those of it among them. Only rows are found here: the columns are read for the
    few that pass a test (a prefix can match a tenth of a city)."""
    rows = index._live_rows(merchant_ids)
    overlay = index._overlay_rows()
    among = np.zeros(len(overlay.ids), dtype=bool)
    if len(overlay.ids) and len(merchant_ids):
        at = np.minimum(np.searchsorted(merchant_ids, overlay.ids), len(merchant_ids) - 1)
        among = merchant_ids[at] == overlay.ids
    return rows, overlay, among


def _wanted(cats: np.ndarray, categories: Sequence[int] | None) -> BoolArray | None:
    return None if categories is None else np.isin(cats, np.asarray(categories, dtype=np.int8))


def within_among(
    index: NearbyIndex,
    merchant_ids: IntArray,
    lat: float,
    lng: float,
    radius_m: float,
    categories: Sequence[int] | None = None,
) -> tuple[IntArray, FloatArray]:
    """Those of ``merchant_ids`` (sorted, unique) within radius_m as (ids, chord2), nearest
    first, ties by id: NearbyIndex.within() restricted to them."""
    rows, overlay, among = _rows_among(index, merchant_ids)
    point, max_c2 = point_to_xyz(lat, lng), m_to_chord2(radius_m)
    c2 = chord2_to(index._xyz[rows], point)
    inside = c2 <= max_c2
    rows, c2 = rows[inside], c2[inside]
    more_c2 = chord2_to(overlay.xyz[among], point)
    near = more_c2 <= max_c2
    more_ids, more_c2 = overlay.ids[among][near], more_c2[near]
    ids = np.concatenate([index._ids[rows], more_ids])
    c2 = np.concatenate([c2, more_c2])
    wanted = _wanted(np.concatenate([index._cats[rows], overlay.cats[among][near]]), categories)
    if wanted is not None:
        ids, c2 = ids[wanted], c2[wanted]
    order = np.lexsort((ids, c2))
    return ids[order], c2[order]


def box_among(
    index: NearbyIndex, merchant_ids: IntArray, box: Box, categories: Sequence[int] | None = None
) -> BoxHits:
    """Those of ``merchant_ids`` (sorted, unique) inside the box, ids ascending:
    NearbyIndex.in_box() restricted to them."""
    rows, overlay, among = _rows_among(index, merchant_ids)
    rows = rows[box.contains(index._lat[rows], index._lng[rows])]
    extra = np.flatnonzero(among)
    extra = extra[box.contains(overlay.lats[extra], overlay.lngs[extra])]
    hits = BoxHits(
        np.concatenate([index._ids[rows], overlay.ids[extra]]),
        np.concatenate([index._lat[rows], overlay.lats[extra]]),
        np.concatenate([index._lng[rows], overlay.lngs[extra]]),
        np.concatenate([index._cats[rows], overlay.cats[extra]]).astype(np.int64),
        np.concatenate([index._fine_cells[rows], overlay.cells[extra]]),
    )
    wanted = _wanted(hits.categories, categories)
    if wanted is not None:
        hits = hits.where(wanted)
    return hits.where(np.argsort(hits.ids, kind="stable"))
