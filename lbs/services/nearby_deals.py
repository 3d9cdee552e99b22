"""Nearby with has_deal or sort=deal_ending: found from the deals, which are few, not the index
(a text search, q, keeps those of them that match it)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy.orm import Session

from lbs.geo.distance import chord2_to_m
from lbs.services.deal_offers import deal_summary
from lbs.services.deal_patterns import EPOCH, micros
from lbs.services.deal_reads import DealReads
from lbs.services.hours import open_at
from lbs.services.live_index import LiveIndex
from lbs.services.nearby_pages import (
    NearbyItem,
    NearbyPage,
    NearbyQuery,
    PageCursor,
    after_best,
    after_nearer,
    best_first_order,
    encode_cursor,
)
from lbs.services.nearby_rated import rated_at_least, rating_values


def search_offers(
    session: Session, live: LiveIndex, deals: DealReads, query: NearbyQuery, after: PageCursor | None
) -> NearbyPage:
    """Merchants with a deal claimable at the page's instant: nearest first, or (deal_ending)
    the soonest-ending deal first, then nearest, then by id, or (rating) best rated first."""
    ending = query.sort == "deal_ending"
    at = query.at
    if after is not None and after.at_us is not None:
        at = EPOCH + timedelta(microseconds=after.at_us)  # every page is taken at the first page's instant
    found, best = deals.claimable_near(query.lat, query.lon, query.radius_m, at, query.categories)
    ids, chord2, ends = found.merchant_ids, found.chord2, found.ends_us
    if query.text is not None:
        keep = np.isin(ids, live.text_matches(query.text).ids)
        ids, chord2, ends = ids[keep], chord2[keep], ends[keep]
    if query.min_rating is not None:
        keep = rated_at_least(live, ids, query.min_rating)
        ids, chord2, ends = ids[keep], chord2[keep], ends[keep]
    if query.open_now:
        opened = open_at(session, ids.tolist(), at)
        keep = np.isin(ids, np.fromiter(opened, dtype=np.int64, count=len(opened)))
        ids, chord2, ends = ids[keep], chord2[keep], ends[keep]
    by_rating = query.sort == "rating"
    values = rating_values(live, ids) if by_rating else np.zeros(len(ids))
    if ending:
        order = np.lexsort((ids, chord2, ends))
    elif by_rating:
        order = best_first_order(values, chord2, ids)
    else:
        order = np.arange(len(ids))  # already (chord2, id)
    ids, chord2, ends, values = ids[order], chord2[order], ends[order], values[order]
    total = len(ids)
    if after is not None:
        # Strictly after the cursor's key: the first position past it in the page order.
        if by_rating:
            assert after.rating is not None  # decode_cursor saw to it
            keep = after_best(values, chord2, ids, after.rating, after)
        elif ending:
            assert after.ends_us is not None
            keep = (ends > after.ends_us) | ((ends == after.ends_us) & after_nearer(chord2, ids, after))
        else:
            keep = after_nearer(chord2, ids, after)
        ids, chord2, ends, values = ids[keep], chord2[keep], ends[keep], values[keep]
    page_ids = ids[: query.limit].tolist()
    merchants = live.public_merchants(session, page_ids)
    offers = best if best is not None else {m: o.now for m, o in deals.offers(page_ids, at).items() if o.now}
    distances_m = chord2_to_m(chord2[: query.limit]).round(2).tolist()
    items = [
        NearbyItem(merchants[m], distance_m, deal_summary(offers[m]))
        for m, distance_m in zip(page_ids, distances_m, strict=True)
        if m in merchants and m in offers
    ]
    next_cursor = None
    if len(ids) > query.limit:
        last = query.limit - 1
        next_cursor = encode_cursor(
            query,
            float(chord2[last]),
            int(ids[last]),
            int(ends[last]) if ending else None,
            micros(at) if ending else None,
            rating=float(values[last]) if by_rating else None,
        )
    ranking = "deal_ending" if ending else "rating" if by_rating else "distance"
    return NearbyPage(total=total, items=items, next_cursor=next_cursor, ranking=ranking, at=at)
