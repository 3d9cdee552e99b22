"""Merchants in a map's viewport: every active one inside a box, as GeoJSON, paged by id.

The box comes from the nearby index (lbs.geo.h3box), exact and across the antimeridian;
filters are those of /v1/nearby (categories, a deal claimable at ``at``, open at ``at``,
a text search, a minimum rating),
applied to every merchant in the box, so ``total`` counts exactly what the pages hold.
Pages go by merchant id, so a moving map can fetch the rest of a box without repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES
from lbs.db import IN_CHUNK
from lbs.geo.h3box import BoxHits
from lbs.geo.h3clusters import Clusters, cluster_resolution, clusters
from lbs.geo.h3index import Box
from lbs.search.words import TextQuery
from lbs.services import cursors
from lbs.services.deal_offers import deal_summary
from lbs.services.deal_reads import DealReads
from lbs.services.hours import merchant_hours, open_at
from lbs.services.live_index import LiveIndex
from lbs.services.nearby import refresh
from lbs.services.nearby_rated import rated_at_least


@dataclass(frozen=True)
class BoxQuery:
    box: Box
    limit: int
    at: datetime
    cursor: str | None = None
    categories: tuple[str, ...] | None = None
    has_deal: bool = False
    open_now: bool = False
    text: TextQuery | None = None  # only merchants matching these words (q)
    min_rating: float | None = None  # only merchants whose shown average is at least this


def _cursor_key(query: BoxQuery) -> list[object]:
    """What a page's cursor belongs to: the box and the filters."""
    b = query.box
    key: list[object] = [
        b.min_lng,
        b.min_lat,
        b.max_lng,
        b.max_lat,
        query.categories,
        query.has_deal,
        query.open_now,
    ]
    if query.text is not None:  # appended only when given: cursors of earlier releases still hold
        key.append(str(query.text))
    if query.min_rating is not None:
        key.append(["min_rating", query.min_rating])
    return key


_UNCHANGED = "keep bbox, q, category, has_deal, open_now and min_rating unchanged"


def _with_claimable_deal(deals: DealReads, ids: np.ndarray, at: datetime) -> np.ndarray:
    """Those of ``ids`` (in their order) whose merchant has a deal claimable at ``at``."""
    candidates = ids[np.isin(ids, deals.merchants_with_deals(at, ids))]
    keep = []
    for start in range(0, len(candidates), IN_CHUNK):
        chunk = candidates[start : start + IN_CHUNK].tolist()
        best = deals.best_claimable(chunk, at)
        keep += [chunk[p] for p in sorted(best.positions.tolist())]
    return np.array(keep, dtype=np.int64)


def _matching(
    session: Session, live: LiveIndex, deals: DealReads, query: BoxQuery, *, by_id: bool = True
) -> BoxHits:
    """Every merchant in the box that passes the query's filters, ids ascending (or unordered)."""
    refresh(session, live, deals.book)
    codes = None if query.categories is None else [CATEGORY_CODES[c] for c in query.categories]
    hits = live.in_box(query.box, codes, by_id=by_id, text=query.text)
    if query.min_rating is not None:
        hits = hits.where(rated_at_least(live, hits.ids, query.min_rating))
    if query.has_deal:
        hits = hits.where(np.isin(hits.ids, _with_claimable_deal(deals, hits.ids, query.at)))
    if query.open_now:
        opened = open_at(session, hits.ids.tolist(), query.at)
        hits = hits.where(np.isin(hits.ids, np.fromiter(opened, dtype=np.int64, count=len(opened))))
    return hits


def merchants_in_box(session: Session, live: LiveIndex, deals: DealReads, query: BoxQuery) -> dict[str, Any]:
    """One page as an RFC 7946 FeatureCollection, with ``total`` and ``next_cursor`` beside it."""
    after = cursors.decode_id(query.cursor, _cursor_key(query), _UNCHANGED) if query.cursor else None
    ids = _matching(session, live, deals, query).ids
    rest = ids if after is None else ids[ids > after]
    page = rest[: query.limit].tolist()
    merchants = live.public_merchants(session, page)
    offers = deals.offers([i for i in page if i in merchants], query.at)
    features = []
    for merchant_id in page:
        merchant = merchants.get(merchant_id)
        if merchant is None:  # closed since the index last looked: gone from the page
            continue
        offer = offers.get(merchant_id)
        features.append(
            {
                "type": "Feature",
                "id": merchant_id,
                "geometry": {"type": "Point", "coordinates": [merchant["lon"], merchant["lat"]]},
                "properties": {
                    **merchant,
                    **merchant_hours(merchant, query.at).public(),
                    "deal": None if offer is None or offer.now is None else deal_summary(offer.now),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "total": len(ids),
        "next_cursor": cursors.encode_id(_cursor_key(query), page[-1]) if len(rest) > query.limit else None,
        "at": query.at.isoformat(),
    }


def started_dealers(deals: DealReads, at: datetime) -> npt.NDArray[np.int64]:
    """The merchants with a published deal whose validity has begun and not ended at ``at``
    (its windows aside), sorted and unique: what a cluster's ``with_deals`` counts, taken
    from here alone."""
    # An ``among`` longer than IN_CHUNK asks merchants_with_deals for every such merchant.
    every = range(IN_CHUNK + 1)
    return deals.merchants_with_deals(at, every, started=True)


def clusters_with(
    session: Session,
    live: LiveIndex,
    deals: DealReads,
    query: BoxQuery,
    resolution: int,
    dealers: npt.NDArray[np.int64],
) -> Clusters:
    """The matching merchants counted per H3 cell at ``resolution``: per cell its merchants'
    mean position, and how many of them are among ``dealers`` (started_dealers: those with
    a deal valid at ``at``). Every cell in the box, so no pages.

    Without a per-merchant filter the index counts from its per-cell totals (no merchant
    of a cell inside the box is read); ``has_deal`` and ``open_now`` read every merchant,
    a text search every match."""
    if _per_merchant(query):
        return clusters(_matching(session, live, deals, query, by_id=False), resolution, dealers)
    codes = None if query.categories is None else [CATEGORY_CODES[c] for c in query.categories]
    return live.clusters(query.box, resolution, codes, dealers)


def _per_merchant(query: BoxQuery) -> bool:
    """Whether a filter needs each merchant in the box looked at (else cells' totals do)."""
    return query.has_deal or query.open_now or query.text is not None or query.min_rating is not None


def _features_text(found: Clusters) -> bytes:
    """The clusters as a JSON array of GeoJSON Point features, written as text: a whole
    city at zoom 14 is 6,500 features, and building a dict per feature took 60 % of such a
    request. The numbers are written by orjson (shortest round-trip floats, as for any
    other response), a row at a time; only the pieces are joined in Python."""
    if not len(found.cells):
        return b"[]"
    numbers = np.column_stack([np.round(found.lngs, 6), np.round(found.lats, 6)])
    coordinates = orjson.dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2].split(b"],[")
    counts = orjson.dumps(np.column_stack([found.counts, found.marked]), option=orjson.OPT_SERIALIZE_NUMPY)
    count_pairs = counts[2:-2].split(b"],[")
    head, middle = b'{"type":"Feature","id":"', b'","geometry":{"type":"Point","coordinates":['
    tail = b']},"properties":{"cluster":true,"count":'
    # The id: h3.int_to_str's hex, without a call per cell.
    return (
        b"["
        + b",".join(
            [
                b"".join((head, b"%x" % cell, middle, xy, tail, pair.replace(b",", b',"with_deals":'), b"}}"))
                for cell, xy, pair in zip(found.cells.tolist(), coordinates, count_pairs, strict=True)
            ]
        )
        + b"]"
    )


def clusters_in_box(
    session: Session, live: LiveIndex, deals: DealReads, query: BoxQuery, zoom: int
) -> dict[str, Any]:
    """clusters_with() at the resolution for ``zoom`` as a GeoJSON FeatureCollection (its
    features already encoded, for orjson): one Point feature per cell, ``total`` the sum
    of the counts.

    Without a per-merchant filter, the answer is kept for the same box, resolution and
    categories while the index and the deal book's dealers hold (lbs.services.view_cache):
    every visitor of a page with an embedded map asks for the same first view."""
    resolution = cluster_resolution(zoom, live.resolutions[-1])
    refresh(session, live, deals.book)
    generation, dealers = live.generation, started_dealers(deals, query.at)

    def draw() -> tuple[bytes, int]:
        found = clusters_with(session, live, deals, query, resolution, dealers)
        return _features_text(found), int(found.counts.sum())

    kept = not _per_merchant(query)
    key = ("clusters", query.box, resolution, query.categories) if kept else None
    view = live.views.get_or_draw(key, generation, dealers, draw)
    return {
        "type": "FeatureCollection",
        "features": orjson.Fragment(view.body),
        "total": view.total,
        "zoom": zoom,
        "resolution": resolution,
        "at": query.at.isoformat(),
    }
