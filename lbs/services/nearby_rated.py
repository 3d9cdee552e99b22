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
from lbs.services.nearby_pages import NearbyPage, NearbyQuery, PageCursor, best_first_page

UNRATED = 0.0  # below every average (1 to 5): after them in the order


def rated_at_least(live: LiveIndex, ids: IntArray, min_rating: float) -> npt.NDArray[np.bool_]:
    """Which of ``ids`` have a shown average of at least ``min_rating`` (unrated: none)."""
    return rating_values(live, ids) >= min_rating


def rating_values(live: LiveIndex, ids: IntArray) -> FloatArray:
    """What sort=rating orders by: the shown average, UNRATED without reviews."""
    return np.nan_to_num(live.ratings.averages(ids), nan=UNRATED)


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
    ratings = rating_values(live, ids)
    return best_first_page(session, live, deals, query, (ids, chord2, ratings), after, "rating")
