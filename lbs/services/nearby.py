"""Nearby search: the per-process live index, kept current from the change log, and paging."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES, N_CATEGORIES
from lbs.errors import InvalidParameter, NotReady
from lbs.geo.distance import chord2_to_m
from lbs.geo.h3index import Box, BoxHits, Cursor, NearbyHits, NearbyIndex
from lbs.geo.h3search import Hit
from lbs.models import Merchant
from lbs.services import cursors, relevance
from lbs.services.deal_offers import MerchantOffer, NearOffer, best_offers, deal_summary, offers_near
from lbs.services.deal_schedule import EARLIEST, LATEST
from lbs.services.hours import UNKNOWN, Hours, merchant_hours, open_at
from lbs.services.merchants import public_merchants
from lbs.services.revisions import latest_revision
from recommender.model import Model

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_OFFSET = 1_000_000


class LiveIndex:
    """One process's NearbyIndex plus the revision it has caught up to.

    Every query first polls the change log if the last poll is older than
    ``refresh_s``; a write committed in any worker is therefore visible everywhere
    within ``refresh_s`` plus one poll.
    """

    def __init__(
        self, resolutions: Sequence[int], refresh_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.resolutions = tuple(resolutions)
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self.index: NearbyIndex | None = None
        self.revision = 0
        self._polled_at = float("-inf")
        self.build_seconds = 0.0

    def load(self, session: Session) -> None:
        started = time.perf_counter()
        # The newest revision first: a write racing with the scan below is then picked up
        # again by the next poll (re-applying a change is harmless).
        revision = latest_revision(session)
        # Room for every active row, filled a batch at a time without Python lists of all rows.
        capacity = session.execute(
            select(func.count()).select_from(Merchant).where(Merchant.status == "active")
        ).scalar_one()
        ids: npt.NDArray[Any] = np.empty(capacity, dtype=np.int64)
        lats: npt.NDArray[Any] = np.empty(capacity, dtype=np.float64)
        lngs: npt.NDArray[Any] = np.empty(capacity, dtype=np.float64)
        cats: npt.NDArray[Any] = np.empty(capacity, dtype=np.int8)
        n = 0
        rows = session.execute(
            select(Merchant.id, Merchant.lat, Merchant.lon, Merchant.category)
            .where(Merchant.status == "active")
            .execution_options(yield_per=10_000)
        )
        for batch in rows.partitions():
            if n + len(batch) > capacity:  # rows activated since the count
                capacity = 2 * (n + len(batch))
                ids, lats, lngs, cats = (np.resize(a, capacity) for a in (ids, lats, lngs, cats))
            end = n + len(batch)
            ids[n:end], lats[n:end], lngs[n:end] = zip(*((r[0], r[1], r[2]) for r in batch), strict=True)
            cats[n:end] = [CATEGORY_CODES[r[3]] for r in batch]
            n = end
        index = NearbyIndex(N_CATEGORIES, ids[:n], lats[:n], lngs[:n], cats[:n], resolutions=self.resolutions)
        with self._lock:
            self.index, self.revision = index, revision
            self._polled_at = self._clock()
        self.build_seconds = time.perf_counter() - started

    def mark_stale(self) -> None:
        self._polled_at = float("-inf")

    def refresh_if_due(self, session: Session) -> None:
        if self.index is None:
            self.load(session)
            return
        if self._clock() - self._polled_at < self.refresh_s:
            return
        with self._lock:
            if self._clock() - self._polled_at < self.refresh_s:
                return
            self._polled_at = self._clock()
            changes = session.execute(
                select(
                    Merchant.id,
                    Merchant.lat,
                    Merchant.lon,
                    Merchant.category,
                    Merchant.status,
                    Merchant.revision,
                )
                .where(Merchant.revision > self.revision)
                .order_by(Merchant.revision)
            ).all()
            for merchant_id, lat, lng, category, status, revision in changes:
                if status == "active":
                    self.index.upsert(merchant_id, lat, lng, CATEGORY_CODES[category])
                else:
                    self.index.remove(merchant_id)
                self.revision = max(self.revision, revision)

    @contextmanager
    def _locked(self) -> Iterator[NearbyIndex]:
        """The index, held against writes for one read."""
        if self.index is None:
            raise NotReady("the nearby index is not loaded yet")
        with self._lock:
            yield self.index

    def query(
        self,
        lat: float,
        lng: float,
        radius_m: float,
        limit: int,
        after: Cursor | None = None,
        categories: Sequence[int] | None = None,
    ) -> NearbyHits:
        with self._locked() as index:
            return index.query(lat, lng, radius_m, limit, after=after, categories=categories)

    def within(
        self, lat: float, lng: float, radius_m: float, categories: Sequence[int] | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        with self._locked() as index:
            return index.within(lat, lng, radius_m, categories)

    def in_box(self, box: Box, categories: Sequence[int] | None = None, *, by_id: bool = True) -> BoxHits:
        with self._locked() as index:
            return index.in_box(box, categories, by_id=by_id)

    @property
    def size(self) -> int:
        return 0 if self.index is None else self.index.size


@dataclass(frozen=True)
class NearbyQuery:
    lat: float
    lon: float
    radius_m: float
    limit: int
    at: datetime  # deals are shown (and has_deal walks taken) as of this instant
    cursor: str | None = None
    categories: tuple[str, ...] | None = None
    sort: str = "distance"
    has_deal: bool = False
    user_id: int | None = None  # whose history sort=relevance reads (None: anonymous)
    open_now: bool = False  # only merchants open at `at` (in their own zone)


@dataclass(frozen=True)
class NearbyItem:
    merchant: dict[str, Any]
    distance_m: float
    deal: dict[str, Any] | None = None
    next_deal: dict[str, Any] | None = None
    reasons: list[dict[str, Any]] | None = None  # sort=relevance only
    hours: Hours = UNKNOWN  # open at the page's instant, and the next change


@dataclass(frozen=True)
class NearbyPage:
    total: int
    items: list[NearbyItem]
    next_cursor: str | None
    ranking: str
    at: datetime
    model: str | None = None  # the model version that ranked the page


@dataclass(frozen=True)
class PageCursor:
    """After the last item of a page; deal_ending pages also pin the instant they rank at."""

    chord2: float
    id: int
    ends_us: int | None = None
    at_us: int | None = None
    offset: int | None = None  # sort=relevance: how many results came before


def _fingerprint(query: NearbyQuery) -> str:
    return cursors.fingerprint(
        [query.lat, query.lon, query.radius_m, query.categories, query.sort, query.has_deal, query.open_now]
    )


def encode_cursor(
    query: NearbyQuery,
    chord2: float,
    merchant_id: int,
    ends_us: int | None = None,
    at_us: int | None = None,
    offset: int | None = None,
) -> str:
    fields: dict[str, Any] = {"q": _fingerprint(query), "d": chord2.hex(), "i": merchant_id}
    if ends_us is not None:
        fields["e"] = ends_us
    if at_us is not None:
        fields["t"] = at_us
    if offset is not None:
        fields["o"] = offset
    return cursors.encode(fields)


def decode_cursor(query: NearbyQuery, token: str) -> PageCursor:
    cursor, fingerprint = cursors.decode(
        token,
        lambda raw: (
            PageCursor(
                float.fromhex(raw["d"]),
                int(raw["i"]),
                None if raw.get("e") is None else int(raw["e"]),
                None if raw.get("t") is None else int(raw["t"]),
                None if raw.get("o") is None else int(raw["o"]),
            ),
            raw["q"],
        ),
    )
    instants = [us for us in (cursor.ends_us, cursor.at_us) if us is not None]
    if any(not _micros(EARLIEST) <= us <= _micros(LATEST) for us in instants) or (
        cursor.offset is not None and not 0 <= cursor.offset <= MAX_OFFSET
    ):
        raise InvalidParameter("cursor", cursors.MALFORMED)
    if fingerprint != _fingerprint(query) or (query.sort == "deal_ending") != (cursor.ends_us is not None):
        raise InvalidParameter(
            "cursor",
            "cursor belongs to another query; keep lat, lon, radius_m, category, has_deal, open_now "
            "and sort unchanged",
        )
    return cursor


def _micros(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


def search_nearby(
    session: Session, live: LiveIndex, query: NearbyQuery, ranking: Ranking | None = None
) -> NearbyPage:
    """One page of active merchants within the radius, with their deals and whether each
    is open at the page's instant: nearest first (ties by id), or by relevance when
    ``ranking`` holds a model."""
    page = _search(session, live, query, ranking)
    items = [replace(item, hours=merchant_hours(item.merchant, page.at)) for item in page.items]
    return replace(page, items=items)


def _search(session: Session, live: LiveIndex, query: NearbyQuery, ranking: Ranking | None) -> NearbyPage:
    after = decode_cursor(query, query.cursor) if query.cursor else None
    at = query.at
    if query.has_deal or query.sort == "deal_ending":
        return _search_offers(session, query, after, at)
    live.refresh_if_due(session)
    codes: Sequence[int] | None = None
    if query.categories is not None:
        codes = [CATEGORY_CODES[c] for c in query.categories]
    model = ranking.holder.get() if query.sort == "relevance" and ranking is not None else None
    source: LiveIndex | _OpenOnly = live
    if query.open_now:
        pinned = at if after is None or after.at_us is None else EPOCH + timedelta(microseconds=after.at_us)
        source = _OpenOnly(session, live, query, codes, pinned if model is not None else at)
    if model is not None and ranking is not None:
        return _search_relevance(session, source, query, model, ranking, after, codes)
    # One extra hit tells whether another page exists.
    start = None if after is None else Cursor(after.chord2, after.id)
    found = source.query(query.lat, query.lon, query.radius_m, query.limit + 1, after=start, categories=codes)
    hits = found.hits[: query.limit]
    merchants = public_merchants(session, [h.id for h in hits])
    offers = best_offers(session, [h.id for h in hits if h.id in merchants], at)
    distances_m = chord2_to_m([h.chord2 for h in hits]).round(2).tolist()
    items = [
        _item(merchants[h.id], distance_m, offers.get(h.id))
        for h, distance_m in zip(hits, distances_m, strict=True)
        if h.id in merchants
    ]
    next_cursor = None
    if len(found.hits) > query.limit:
        last = hits[-1]
        next_cursor = encode_cursor(query, last.chord2, last.id)
    # Relevance ranking arrives with the recommender; until then it is distance.
    return NearbyPage(total=found.total, items=items, next_cursor=next_cursor, ranking="distance", at=at)


def _item(
    merchant: dict[str, Any],
    distance_m: float,
    offer: MerchantOffer | None,
    reasons: list[dict[str, Any]] | None = None,
) -> NearbyItem:
    if offer is None:
        return NearbyItem(merchant, distance_m, reasons=reasons)
    return NearbyItem(
        merchant,
        distance_m,
        None if offer.now is None else deal_summary(offer.now),
        None if offer.next is None else deal_summary(offer.next),
        reasons,
    )


@dataclass(frozen=True)
class Ranking:
    """What sort=relevance needs besides the index: the model, and the blend's knobs."""

    holder: relevance.ModelHolder
    deal_weight: float
    exploration_share: float


class _OpenOnly:
    """LiveIndex.query() over just the merchants open at an instant: every merchant in the
    radius is read and its hours evaluated once per page, so totals stay exact."""

    def __init__(
        self, session: Session, live: LiveIndex, query: NearbyQuery, codes: Sequence[int] | None, at: datetime
    ) -> None:
        ids, chord2 = live.within(query.lat, query.lon, query.radius_m, codes)
        keep = np.isin(ids, list(open_at(session, ids.tolist(), at)))
        self.ids, self.chord2 = ids[keep], chord2[keep]

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
        ids, chord2 = self.ids[start : start + limit].tolist(), self.chord2[start : start + limit].tolist()
        return NearbyHits(total=len(self.ids), hits=[Hit(i, c) for i, c in zip(ids, chord2, strict=True)])


def _search_relevance(
    session: Session,
    live: LiveIndex | _OpenOnly,
    query: NearbyQuery,
    model: Model,
    ranking: Ranking,
    after: PageCursor | None,
    codes: Sequence[int] | None,
) -> NearbyPage:
    """The nearest RERANK_CANDIDATES re-ranked for the user, then the rest by distance.

    Pages are offsets into that order, taken at the first page's instant; the order is
    recomputed per page, so it holds while the model and the user's history hold.
    """
    offset = 0 if after is None or after.offset is None else after.offset
    at = query.at if after is None or after.at_us is None else EPOCH + timedelta(microseconds=after.at_us)
    wanted = max(relevance.RERANK_CANDIDATES, offset + query.limit + 1)
    found = live.query(query.lat, query.lon, query.radius_m, wanted, categories=codes)
    head = found.hits[: relevance.RERANK_CANDIDATES]
    ids = [h.id for h in head]
    distances = chord2_to_m([h.chord2 for h in head])
    times: list[float] = []
    visited: list[int] = []
    if query.user_id is not None:
        times, visited = relevance.user_history(session, query.user_id, at)
    origin = relevance.origin_here(visited, ids, distances)
    offers = best_offers(session, ids, at)
    ranked = relevance.rank(
        model,
        query.user_id,
        model.history(times, visited),
        origin,
        ids,
        distances,
        at,
        offers,
        ranking.deal_weight,
        ranking.exploration_share,
    )
    order = [*ranked.order.tolist(), *range(len(head), len(found.hits))]
    positions = order[offset : offset + query.limit]
    page_ids = [found.hits[p].id for p in positions]
    merchants = public_merchants(session, page_ids)
    beyond_head = [i for p, i in zip(positions, page_ids, strict=True) if p >= len(head)]
    page_offers = {**offers, **best_offers(session, beyond_head, at)}
    categories = relevance.merchant_categories(session, visited)
    by_category = Counter(categories[m] for m in set(visited) if m in categories)
    page_distances = chord2_to_m([found.hits[p].chord2 for p in positions]).round(2).tolist()
    items = []
    for p, distance_m in zip(positions, page_distances, strict=True):
        merchant_id = found.hits[p].id
        if merchant_id not in merchants:
            continue
        offer = page_offers.get(merchant_id)
        why = (
            relevance.reasons(
                ranked,
                p,
                distance_m,
                offer,
                merchants[merchant_id]["category"],
                dict(by_category),
                ranking.holder.popular_at,
            )
            if p < len(head)
            else relevance.distance_reason(distance_m)
        )
        items.append(_item(merchants[merchant_id], distance_m, offer, why))
    next_cursor = None
    if len(order) > offset + query.limit:
        last = found.hits[positions[-1]]
        next_cursor = encode_cursor(
            query, last.chord2, last.id, at_us=_micros(at), offset=offset + query.limit
        )
    return NearbyPage(
        total=found.total,
        items=items,
        next_cursor=next_cursor,
        ranking="relevance",
        at=at,
        model=model.meta.get("version"),
    )


def _search_offers(
    session: Session, query: NearbyQuery, after: PageCursor | None, at: datetime
) -> NearbyPage:
    """Merchants with a deal claimable at ``at``: found from the deals, which are few, not the index."""
    ending = query.sort == "deal_ending"
    if after is not None and after.at_us is not None:
        at = EPOCH + timedelta(microseconds=after.at_us)  # every page is taken at the first page's instant
    near = offers_near(session, query.lat, query.lon, query.radius_m, at, query.categories)
    if query.open_now:
        opened = open_at(session, [n.merchant_id for n in near], at)
        near = [n for n in near if n.merchant_id in opened]

    def key(n: NearOffer) -> tuple[Any, ...]:
        ends = _micros(n.offer.ends_at or n.offer.deal.valid_until)
        return (ends, n.chord2, n.merchant_id) if ending else (n.chord2, n.merchant_id)

    near.sort(key=key)
    total = len(near)
    if after is not None:
        start = (after.ends_us, after.chord2, after.id) if ending else (after.chord2, after.id)
        near = [n for n in near if key(n) > start]
    page = near[: query.limit]
    merchants = public_merchants(session, [n.merchant_id for n in page])
    distances_m = chord2_to_m([n.chord2 for n in page]).round(2).tolist()
    items = [
        NearbyItem(merchants[n.merchant_id], distance_m, deal_summary(n.offer))
        for n, distance_m in zip(page, distances_m, strict=True)
        if n.merchant_id in merchants
    ]
    next_cursor = None
    if len(near) > query.limit:
        last = page[-1]
        ends = key(last)[0] if ending else None
        next_cursor = encode_cursor(
            query, last.chord2, last.merchant_id, ends, _micros(at) if ending else None
        )
    ranking = "deal_ending" if ending else "distance"
    return NearbyPage(total=total, items=items, next_cursor=next_cursor, ranking=ranking, at=at)


def page_to_geojson(page: NearbyPage) -> dict[str, Any]:
    """RFC 7946 FeatureCollection, positions in [lon, lat] order."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": item.merchant["id"],
                "geometry": {"type": "Point", "coordinates": [item.merchant["lon"], item.merchant["lat"]]},
                "properties": {
                    **item.merchant,
                    "distance_m": item.distance_m,
                    **item.hours.public(),
                    "deal": item.deal,
                    "next_deal": item.next_deal,
                },
            }
            for item in page.items
        ],
        "total": page.total,
        "next_cursor": page.next_cursor,
        "ranking": page.ranking,
    }
