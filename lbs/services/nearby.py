"""Nearby search: the per-process live index, kept current from the change log, and paging."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES, N_CATEGORIES
from lbs.errors import InvalidParameter, NotReady
from lbs.geo.distance import chord2_to_m
from lbs.geo.h3index import Cursor, NearbyHits, NearbyIndex
from lbs.models import Merchant
from lbs.services.merchants import public_merchants
from lbs.services.revisions import latest_revision


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

    def query(
        self,
        lat: float,
        lng: float,
        radius_m: float,
        limit: int,
        after: Cursor | None = None,
        categories: Sequence[int] | None = None,
    ) -> NearbyHits:
        if self.index is None:
            raise NotReady("the nearby index is not loaded yet")
        with self._lock:
            return self.index.query(lat, lng, radius_m, limit, after=after, categories=categories)

    @property
    def size(self) -> int:
        return 0 if self.index is None else self.index.size


@dataclass(frozen=True)
class NearbyQuery:
    lat: float
    lon: float
    radius_m: float
    limit: int
    cursor: str | None = None
    categories: tuple[str, ...] | None = None
    sort: str = "distance"


@dataclass(frozen=True)
class NearbyItem:
    merchant: dict[str, Any]
    distance_m: float


@dataclass(frozen=True)
class NearbyPage:
    total: int
    items: list[NearbyItem]
    next_cursor: str | None
    ranking: str


def _fingerprint(query: NearbyQuery) -> str:
    key = json.dumps([query.lat, query.lon, query.radius_m, query.categories, query.sort])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def encode_cursor(query: NearbyQuery, chord2: float, merchant_id: int) -> str:
    raw = json.dumps({"q": _fingerprint(query), "d": chord2.hex(), "i": merchant_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(query: NearbyQuery, token: str) -> Cursor:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = Cursor(chord2=float.fromhex(raw["d"]), id=int(raw["i"]))
        fingerprint = raw["q"]
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidParameter(
            "cursor", "cursor is malformed; pass next_cursor from a previous page"
        ) from None
    if fingerprint != _fingerprint(query):
        raise InvalidParameter(
            "cursor", "cursor belongs to another query; keep lat, lon, radius_m, category and sort unchanged"
        )
    return cursor


def search_nearby(session: Session, live: LiveIndex, query: NearbyQuery) -> NearbyPage:
    """One page of active merchants within the radius, nearest first, ties by id."""
    after = decode_cursor(query, query.cursor) if query.cursor else None
    live.refresh_if_due(session)
    codes: Sequence[int] | None = None
    if query.categories is not None:
        codes = [CATEGORY_CODES[c] for c in query.categories]
    # One extra hit tells whether another page exists.
    found = live.query(query.lat, query.lon, query.radius_m, query.limit + 1, after=after, categories=codes)
    hits = found.hits[: query.limit]
    merchants = public_merchants(session, [h.id for h in hits])
    distances_m = chord2_to_m([h.chord2 for h in hits]).round(2).tolist()
    items = [
        NearbyItem(merchants[h.id], distance_m)
        for h, distance_m in zip(hits, distances_m, strict=True)
        if h.id in merchants
    ]
    next_cursor = None
    if len(found.hits) > query.limit:
        last = hits[-1]
        next_cursor = encode_cursor(query, last.chord2, last.id)
    # Relevance ranking arrives with the recommender; until then it is distance.
    return NearbyPage(total=found.total, items=items, next_cursor=next_cursor, ranking="distance")


def page_to_geojson(page: NearbyPage) -> dict[str, Any]:
    """RFC 7946 FeatureCollection, positions in [lon, lat] order."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": item.merchant["id"],
                "geometry": {"type": "Point", "coordinates": [item.merchant["lon"], item.merchant["lat"]]},
                "properties": {**item.merchant, "distance_m": item.distance_m},
            }
            for item in page.items
        ],
        "total": page.total,
        "next_cursor": page.next_cursor,
        "ranking": page.ranking,
    }
