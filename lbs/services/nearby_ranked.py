"""Nearby with sort=relevance: the nearest candidates re-ranked for the user, with reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from lbs.geo.distance import chord2_to_m
from lbs.geo.h3index import NearbyHits
from lbs.services import relevance
from lbs.services.deal_patterns import EPOCH, micros
from lbs.services.deal_reads import DealReads
from lbs.services.live_index import LiveIndex
from lbs.services.nearby_pages import NearbyPage, NearbyQuery, PageCursor, encode_cursor, item
from lbs.services.visit_histories import VisitHistories
from recommender.model import Model


@dataclass(frozen=True)
class Ranking:
    """What sort=relevance needs besides the index: the model, and the blend's knobs."""

    holder: relevance.ModelHolder
    deal_weight: float
    exploration_share: float
    visits: VisitHistories


class Candidates(Protocol):
    def query(
        self, lat: float, lng: float, radius_m: float, limit: int, *, categories: list[int] | None
    ) -> NearbyHits: ...


def search_relevance(
    session: Session,
    live: LiveIndex,
    candidates: Candidates,
    deals: DealReads,
    query: NearbyQuery,
    model: Model,
    ranking: Ranking,
    after: PageCursor | None,
    codes: list[int] | None,
) -> NearbyPage:
    """The nearest RERANK_CANDIDATES re-ranked for the user, then the rest by distance.

    Pages are offsets into that order, taken at the first page's instant; the order is
    recomputed per page, so it holds while the model and the user's history hold.
    """
    offset = 0 if after is None or after.offset is None else after.offset
    at = query.at if after is None or after.at_us is None else EPOCH + timedelta(microseconds=after.at_us)
    wanted = max(relevance.RERANK_CANDIDATES, offset + query.limit + 1)
    found = candidates.query(query.lat, query.lon, query.radius_m, wanted, categories=codes)
    n_head = min(len(found.ids), relevance.RERANK_CANDIDATES)
    ids = found.ids[:n_head].tolist()
    distances = chord2_to_m(found.chord2[:n_head])
    times: list[float] = []
    visited: list[int] = []
    if query.user_id is not None:
        times, visited = ranking.visits.visits(session, query.user_id, at)
    origin = relevance.origin_here(visited, ids, distances)
    boost = relevance.deal_boosts(deals.best_claimable(ids, at), len(ids), ranking.deal_weight, at)
    ranked = relevance.rank(
        model,
        query.user_id,
        model.history(times, visited),
        origin,
        ids,
        distances,
        at,
        boost,
        ranking.exploration_share,
        places=offset + query.limit,
    )
    # The page's positions into found: the ranked head's first places, then by distance.
    order = [*ranked.order.tolist(), *range(n_head, len(found.ids))]
    positions = order[offset : offset + query.limit]
    page_ids = found.ids[positions].tolist()
    merchants = live.public_merchants(session, page_ids)
    offers = deals.offers(page_ids, at)
    categories = live.categories_of(sorted(set(visited)))
    by_category = dict(Counter(categories.values()))
    page_distances = chord2_to_m(found.chord2[positions]).round(2).tolist()
    items = []
    for p, merchant_id, distance_m in zip(positions, page_ids, page_distances, strict=True):
        if merchant_id not in merchants:
            continue
        offer = offers.get(merchant_id)
        why = (
            relevance.reasons(
                ranked,
                p,
                distance_m,
                offer,
                merchants[merchant_id]["category"],
                by_category,
                ranking.holder.popular_at,
            )
            if p < n_head
            else relevance.distance_reason(distance_m)
        )
        items.append(item(merchants[merchant_id], distance_m, offer, why))
    next_cursor = None
    if len(found.ids) > offset + query.limit:
        last = positions[-1]
        next_cursor = encode_cursor(
            query,
            float(found.chord2[last]),
            int(found.ids[last]),
            at_us=micros(at),
            offset=offset + query.limit,
        )
    return NearbyPage(
        total=found.total,
        items=items,
        next_cursor=next_cursor,
        ranking="relevance",
        at=at,
        model=model.meta.get("version"),
    )
