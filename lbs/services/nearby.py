"""Nearby search: which path answers a query, and the nearest-first path itself.

The paths: nearest first from the live index (here), relevance (nearby_ranked), relevance
of a text search (nearby_text), best rated (nearby_rated), and the deals' own path for
has_deal and sort=deal_ending (nearby_deals). A text search (q) and min_rating narrow each
of them to the merchants matching. Each page reads the database for the page's merchants,
and for a user's history when it ranks for one; deals come from the process's deal book
(deal_reads); ratings from the live index's rating table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES
from lbs.geo.h3index import Cursor, NearbyHits
from lbs.services.deal_book import DealBook
from lbs.services.deal_patterns import EPOCH
from lbs.services.deal_reads import DealReads
from lbs.services.hours import merchant_hours, open_at
from lbs.services.live_index import LiveIndex
from lbs.services.nearby_deals import search_offers
from lbs.services.nearby_pages import (
    NearbyItem,
    NearbyPage,
    NearbyQuery,
    decode_cursor,
    encode_cursor,
    page_items,
    ranks_by_text,
)
from lbs.services.nearby_ranked import Ranking, search_relevance
from lbs.services.nearby_rated import rated_at_least, search_rating
from lbs.services.nearby_text import search_text_relevance


def refresh(session: Session, live: LiveIndex, book: DealBook) -> None:
    """Catch the index and the deal book up with the database, when their poll is due."""
    live.refresh_if_due(session)
    book.refresh_if_due(session)


def search_nearby(
    session: Session, live: LiveIndex, book: DealBook, query: NearbyQuery, ranking: Ranking | None = None
) -> NearbyPage:
    """One page of active merchants within the radius, with their deals and whether each
    is open at the page's instant: nearest first (ties by id), or by relevance when
    ``ranking`` holds a model."""
    refresh(session, live, book)
    page = _search(session, live, DealReads(session, book), query, ranking)
    # NearbyItem(...) rather than dataclasses.replace: a page's 20 replace() calls cost more
    # than the hours themselves once those are kept (replace inspects the fields each call).
    items = [
        NearbyItem(
            i.merchant, i.distance_m, i.deal, i.next_deal, i.reasons, merchant_hours(i.merchant, page.at)
        )
        for i in page.items
    ]
    return replace(page, items=items)


def _search(
    session: Session, live: LiveIndex, deals: DealReads, query: NearbyQuery, ranking: Ranking | None
) -> NearbyPage:
    after = decode_cursor(query, query.cursor) if query.cursor else None
    at = query.at
    if query.has_deal or query.sort == "deal_ending":
        return search_offers(session, live, deals, query, after)
    codes = None if query.categories is None else [CATEGORY_CODES[c] for c in query.categories]
    if query.sort == "rating":
        return search_rating(session, live, deals, query, _in_radius(session, live, query, codes), after)
    if ranks_by_text(query):
        return search_text_relevance(
            session, live, deals, query, _in_radius(session, live, query, codes), after
        )
    model = ranking.holder.get() if query.sort == "relevance" and ranking is not None else None
    source: LiveIndex | _Subset = live
    if query.open_now or query.text is not None or query.min_rating is not None:
        pinned = at if after is None or after.at_us is None else EPOCH + timedelta(microseconds=after.at_us)
        source = _Subset(*_in_radius(session, live, query, codes, pinned if model is not None else at)[:2])
    if model is not None and ranking is not None:
        return search_relevance(session, live, source, deals, query, model, ranking, after, codes)
    # One extra hit tells whether another page exists.
    start = None if after is None else Cursor(after.chord2, after.id)
    found = source.query(query.lat, query.lon, query.radius_m, query.limit + 1, after=start, categories=codes)
    hits = found.hits[: query.limit]
    items = page_items(session, live, deals, [h.id for h in hits], [h.chord2 for h in hits], at)
    next_cursor = None
    if len(found.hits) > query.limit:
        last = hits[-1]
        next_cursor = encode_cursor(query, last.chord2, last.id)
    return NearbyPage(total=found.total, items=items, next_cursor=next_cursor, ranking="distance", at=at)


def _in_radius(
    session: Session,
    live: LiveIndex,
    query: NearbyQuery,
    codes: Sequence[int] | None,
    at: datetime | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Every merchant in the radius that passes the text search, min_rating and open_now, as
    (ids, chord2, match scores), nearest first, ties by id: read once per page, so totals
    stay exact. Without a text search every score is 1."""
    if query.text is not None:
        ids, chord2, scores = live.within_matching(query.text, query.lat, query.lon, query.radius_m, codes)
    else:
        ids, chord2 = live.within(query.lat, query.lon, query.radius_m, codes)
        scores = np.ones(len(ids))
    if query.min_rating is not None:
        keep = rated_at_least(live, ids, query.min_rating)
        ids, chord2, scores = ids[keep], chord2[keep], scores[keep]
    if query.open_now:
        keep = np.isin(ids, list(open_at(session, ids.tolist(), query.at if at is None else at)))
        ids, chord2, scores = ids[keep], chord2[keep], scores[keep]
    return ids, chord2, scores


class _Subset:
    """LiveIndex.query() over given merchants in the radius (ids, chord2 nearest first):
    those that pass a filter the index cannot apply (q, open_now)."""

    def __init__(self, ids: npt.NDArray[np.int64], chord2: npt.NDArray[np.float64]) -> None:
        self.ids, self.chord2 = ids, chord2

    def query(
        self,
        lat: float,
        lng: float,
        radius_m: float,
        limit: int,
        after: Cursor | None = None,
        categories: Sequence[int] | None = None,
    ) -> NearbyHits:
        start = 0
        if after is not None:  # strictly after (chord2, id): the order is (chord2, id)
            start = int(np.searchsorted(self.chord2, after.chord2, side="left"))
            while start < len(self.ids) and (self.chord2[start], self.ids[start]) <= (after.chord2, after.id):
                start += 1
        end = start + limit
        return NearbyHits(total=len(self.ids), ids=self.ids[start:end], chord2=self.chord2[start:end])
