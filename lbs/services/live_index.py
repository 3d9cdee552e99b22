"""One process's nearby index, kept current from the merchant change log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs import deadline
from lbs.categories import CATEGORY_CODES, N_CATEGORIES
from lbs.db import unbounded_statements, with_transactions
from lbs.errors import NotReady
from lbs.geo.h3among import box_among, within_among
from lbs.geo.h3clusters import Clusters
from lbs.geo.h3index import Box, BoxHits, Cursor, NearbyHits, NearbyIndex
from lbs.models import Merchant, MerchantRating
from lbs.search.word_index import TextMatches, WordIndex
from lbs.search.word_table import WordTableBuilder
from lbs.search.words import TextQuery, merchant_words
from lbs.services.merchant_cache import MerchantCache
from lbs.services.poll_schedule import PollSchedule
from lbs.services.rating_table import RatingRow, RatingTable
from lbs.services.revisions import latest_revision
from lbs.services.view_cache import ViewCache

CATEGORY_NAMES = dict(enumerate(CATEGORY_CODES))
# A merchant write as pollers see it: id, lat, lng, category, status, time zone.
MerchantChange = tuple[int, float, float, str, str, str]


class LiveIndex:
    """One process's NearbyIndex and WordIndex plus the revision they have caught up to.

    Every query first polls the change log if the last poll is older than
    ``refresh_s``; a write committed in any worker is therefore visible everywhere
    within ``refresh_s`` plus one poll.
    """

    def __init__(
        self,
        resolutions: Sequence[int],
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
        cached_merchants: int = 0,
        cached_view_bytes: int = 0,
    ) -> None:
        self.resolutions = tuple(resolutions)
        self.refresh_s = refresh_s
        self._polls = PollSchedule(refresh_s, clock)
        self._lock = threading.Lock()
        self.index: NearbyIndex | None = None
        # Every active merchant's words (name, category), caught up by the same polls, so a
        # text search and the positions it is checked against are of one revision.
        self.words = WordIndex()
        self.revision = 0
        self.generation = 0  # moves with every change to the index, for what is computed from it
        self.build_seconds = 0.0
        # The rows of recently shown merchants, dropped as the polls see them change.
        self.merchants = MerchantCache(cached_merchants)
        # Every rated merchant's review totals, caught up by the same polls (a review that
        # changes a rating bumps its merchant's revision).
        self.ratings = RatingTable()
        # Large map answers, kept while this index and the deal book's dealers hold.
        self.views = ViewCache(cached_view_bytes)
        # Called with each poll's merchant changes (id, lat, lng, category, status, zone).
        self.listeners: list[Callable[[list[MerchantChange]], None]] = []

    def load(self, session: Session) -> None:
        started = time.perf_counter()
        unbounded_statements(session)
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
        words = WordTableBuilder()
        n = 0
        rows = session.execute(
            select(Merchant.id, Merchant.lat, Merchant.lon, Merchant.category, Merchant.name, Merchant.tags)
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
            words.add_all((r[0], merchant_words(r[4], r[3], r[5] or ())) for r in batch)
            n = end
        index = NearbyIndex(N_CATEGORIES, ids[:n], lats[:n], lngs[:n], cats[:n], resolutions=self.resolutions)
        word_index = WordIndex(words.build())
        del words
        rated = session.execute(
            select(Merchant.id, Merchant.lat, Merchant.lon, Merchant.category, *_RATING_COLUMNS).join(
                MerchantRating, MerchantRating.merchant_id == Merchant.id
            )
        ).all()
        with self._lock:
            self.index, self.revision = index, revision
            self.words = word_index
            self.ratings.load(_rating_rows(rated))
            self.generation += 1
            self._polls.polled()
        self.merchants.clear()
        self.build_seconds = time.perf_counter() - started

    def mark_stale(self) -> None:
        self._polls.mark_stale()

    def refresh_if_due(self, session: Session) -> None:
        if self.index is None:
            # In a session of its own: the load streams rows through a server-side cursor,
            # which needs a transaction, and a read request's session runs without one.
            with deadline.unbounded(), Session(with_transactions(session)) as own:
                self.load(own)
            return
        if not self._polls.due():
            return
        with self._lock:
            if not self._polls.due():
                return
            self._polls.polled()
            changes = session.execute(
                select(
                    Merchant.id,
                    Merchant.lat,
                    Merchant.lon,
                    Merchant.category,
                    Merchant.status,
                    Merchant.timezone,
                    Merchant.revision,
                    Merchant.name,
                    Merchant.tags,
                    *_RATING_COLUMNS,
                )
                .outerjoin(MerchantRating, MerchantRating.merchant_id == Merchant.id)
                .where(Merchant.revision > self.revision)
                .order_by(Merchant.revision)
            ).all()
            self.ratings.apply(_rating_rows((r[0], r[1], r[2], r[3], *r[9:]) for r in changes))
            for merchant_id, lat, lng, category, status, _tz, revision, name, tags, *_ in changes:
                if status == "active":
                    self.index.upsert(merchant_id, lat, lng, CATEGORY_CODES[category])
                    self.words.upsert(merchant_id, merchant_words(name, category, tags or ()))
                else:
                    self.index.remove(merchant_id)
                    self.words.remove(merchant_id)
                self.revision = max(self.revision, revision)
            if changes:
                self.generation += 1
        if changes:
            self.merchants.drop(r[0] for r in changes)
            rows = [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in changes]
            for listener in self.listeners:
                listener(rows)

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

    def in_box(
        self,
        box: Box,
        categories: Sequence[int] | None = None,
        *,
        by_id: bool = True,
        text: TextQuery | None = None,
    ) -> BoxHits:
        """Every live merchant in the box (NearbyIndex.in_box); with ``text``, just those
        matching it, found from the matches (lbs.geo.h3among)."""
        with self._locked() as index:
            if text is None:
                return index.in_box(box, categories, by_id=by_id)
            return box_among(index, self.words.match(text).ids, box, categories)

    def within_matching(
        self,
        text: TextQuery,
        lat: float,
        lng: float,
        radius_m: float,
        categories: Sequence[int] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """within() of the merchants matching ``text``: (ids, chord2, match scores), nearest
        first, ties by id. Read from the matches, which are checked against the circle one
        by one: a text search is narrower than its circle, but for its shortest prefixes."""
        with self._locked() as index:
            matches = self.words.match(text)
            ids, chord2 = within_among(index, matches.ids, lat, lng, radius_m, categories)
        return ids, chord2, matches.scores[np.searchsorted(matches.ids, ids)]

    def text_matches(self, text: TextQuery) -> TextMatches:
        """Every active merchant matching ``text``, wherever it is (WordIndex.match)."""
        with self._locked():
            return self.words.match(text)

    def clusters(
        self, box: Box, resolution: int, categories: Sequence[int] | None, marked_ids: npt.NDArray[np.int64]
    ) -> Clusters:
        """Every live merchant in the box counted per H3 cell at ``resolution`` (NearbyIndex.clusters)."""
        with self._locked() as index:
            return index.clusters(box, resolution, categories, marked_ids)

    def public_merchants(self, session: Session, merchant_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """merchants.public_merchants(), as fresh as the index (MerchantCache), each with
        its rating (RatingTable)."""
        found = self.merchants.get(session, merchant_ids)
        for merchant_id, rating in self.ratings.views(found).items():
            found[merchant_id]["rating"] = rating
        return found

    def rating(self, session: Session, merchant_id: int) -> dict[str, Any] | None:
        """The merchant's rating as of the latest poll (None: no reviews)."""
        self.refresh_if_due(session)
        return self.ratings.views([merchant_id])[merchant_id]

    def categories_of(self, merchant_ids: Sequence[int]) -> dict[int, str]:
        """The category of each active merchant among ``merchant_ids``."""
        with self._locked() as index:
            codes = index.categories_of(merchant_ids)
        return {merchant_id: CATEGORY_NAMES[code] for merchant_id, code in codes.items()}

    @property
    def size(self) -> int:
        return 0 if self.index is None else self.index.size


_RATING_COLUMNS = (MerchantRating.review_count, MerchantRating.rating_sum, MerchantRating.recommend_count)


def _rating_rows(rows: Iterable[Sequence[Any]]) -> list[RatingRow]:
    """(id, lat, lng, category, count, sum, recommend) with no totals row read as zeros."""
    return [(r[0], r[1], r[2], r[3], r[4] or 0, r[5] or 0, r[6] or 0) for r in rows]
