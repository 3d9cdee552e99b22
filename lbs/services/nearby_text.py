"""Nearby with q and sort=relevance: the matches ranked by how well and how near they match.

A merchant's relevance is its match score (lbs.search.word_index: 1.0 when every word of
the query is a whole word of its name, down to 0.25 when each only begins a word of its
category's names) times a distance decay that halves it at HALF_DISTANCE_M:

    relevance = match * HALF_DISTANCE_M / (HALF_DISTANCE_M + distance_m)

so a merchant with the word in its name 1 km away (0.5) ranks beside one with it in its
category 100 m away (0.5 * 0.91 = 0.45), and either beats a name match 3 km away (0.25).
Ties go nearest first, then by id. Pages are keyset pages in that order: a cursor holds
the last item's relevance, distance and id, so it never repeats or skips an item while
the merchants hold.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from lbs.geo.distance import FloatArray, chord2_to_m
from lbs.geo.h3levels import IntArray
from lbs.services.deal_reads import DealReads
from lbs.services.live_index import LiveIndex
from lbs.services.nearby_pages import NearbyPage, NearbyQuery, PageCursor, best_first_page

HALF_DISTANCE_M = 1000.0


def text_relevance(scores: FloatArray, distances_m: FloatArray) -> FloatArray:
    """The blend of match and distance documented above (and in docs/nearby.md)."""
    return scores * (HALF_DISTANCE_M / (HALF_DISTANCE_M + distances_m))


def search_text_relevance(
    session: Session,
    live: LiveIndex,
    deals: DealReads,
    query: NearbyQuery,
    found: tuple[IntArray, FloatArray, FloatArray],
    after: PageCursor | None,
) -> NearbyPage:
    """One page of ``found`` (ids, chord2, match scores: the matches within the radius that
    pass the other filters) by relevance."""
    ids, chord2, scores = found
    relevance = text_relevance(scores, chord2_to_m(chord2))
    return best_first_page(session, live, deals, query, (ids, chord2, relevance), after, "relevance")
