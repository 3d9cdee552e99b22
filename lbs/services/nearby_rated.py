"""Nearby by rating: sort=rating (best shown average first, then nearest, then by id) and
the min_rating filter, both read from the process's rating table (no query per item).

The order is that of the averages as shown (two decimals), so two merchants shown alike
are ordered by distance; merchants without reviews come after every rated one, nearest
first. Pages are keyset pages: a cursor holds the last item's average, distance and id,
so it never repeats or skips an item while the ratings hold.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from lbs.geo.distance import FloatArray
from lbs.geo.h3levels import IntArray
from lbs.services.deal_reads import DealReads
from lbs.services.live_index import LiveIndex
from lbs.services.nearby_pages import NearbyPage, NearbyQuery, PageCursor, encode_cursor, page_items

UNRATED = 0.0  # below every average (1 to 5): after them in the order


def rated_at_least(live: LiveIndex, ids: IntArray, min_rating: float) -> npt.NDArray[np.bool_]:
    """Which of ``ids`` have a shown average of at least ``min_rating`` (unrated: none)."""
    averages = live.ratings.averages(ids)
    return np.nan_to_num(averages, nan=UNRATED) >= min_rating


def rating_values(live: LiveIndex, ids: IntArray) -> FloatArray:
    """What sort=rating orders by: the shown average, UNRATED without reviews."""
    return np.nan_to_num(live.ratings.averages(ids), nan=UNRATED)


def rating_order(values: FloatArray, chord2: FloatArray, ids: IntArray) -> IntArray:
    return np.lexsort((ids, chord2, -values))


def past(values: FloatArray, chord2: FloatArray, ids: IntArray, after: PageCursor) -> npt.NDArray[np.bool_]:
    """Strictly after the cursor's (average desc, chord2, id) in the rating order."""
    assert after.rating is not None  # decode_cursor saw to it
    return (values < after.rating) | (
        (values == after.rating) & ((chord2 > after.chord2) | ((chord2 == after.chord2) & (ids > after.id)))
    )


def search_rating(
    session: Session,
    live: LiveIndex,
    deals: DealReads,
    query: NearbyQuery,
    found: tuple[IntArray, FloatArray, FloatArray],
    after: PageCursor | None,
) -> NearbyPage:
    """One page of ``found`` (ids, chord2, match scores: every merchant in the radius that
    passes the filters) best rated first."""
    ids, chord2, _ = found
    values = rating_values(live, ids)
    order = rating_order(values, chord2, ids)
    ids, chord2, values = ids[order], chord2[order], values[order]
    total = len(ids)
    if after is not None:
        keep = past(values, chord2, ids, after)
        ids, chord2, values = ids[keep], chord2[keep], values[keep]
    items = page_items(session, live, deals, ids[: query.limit].tolist(), chord2[: query.limit], query.at)
    next_cursor = None
    if len(ids) > query.limit:
        last = query.limit - 1
        next_cursor = encode_cursor(query, float(chord2[last]), int(ids[last]), rating=float(values[last]))
    return NearbyPage(total=total, items=items, next_cursor=next_cursor, ranking="rating", at=query.at)
