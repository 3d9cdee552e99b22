"""The per-process book of deals: every published deal in memory, kept fresh from the database.

Nearby pages read deals many times per request (the best offer of 500 candidates, every
claimable deal within 5 km); the book answers from arrays instead of a query each time.
It is kept current like the nearby index: each deal row carries the revision of its last
write (set by the database, migration 0004), and the book polls for revisions at or above
its horizon at most every ``refresh_s`` (lbs.services.revisions.deal_changes). Merchant
writes (a move, a closure) reach it from the live index's poll (merchants_changed).

Claimability is evaluated for many deals at once: per deal the numbers deal_state reads,
and per window pattern (the windows and the zone) the span containing an instant, cached
for as long as the instant stays inside it (or inside the gap before the next one). What
a page shows of a deal is built by DealAt.of from the same row, so the two cannot disagree.

Deals that ended before the book was loaded less ``HISTORY`` are not held: a query
``at`` an instant before ``floor`` is answered from the database (lbs.services.deal_offers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from lbs import deadline
from lbs.categories import CATEGORY_CODES, N_CATEGORIES
from lbs.db import unbounded_statements, with_transactions
from lbs.geo.h3index import NearbyIndex
from lbs.services.deal_offers import DealAt, DealRecord, MerchantOffer, merchant_offer
from lbs.services.deal_patterns import EPOCH, NEVER, WindowPatterns, micros
from lbs.services.poll_schedule import PollSchedule
from lbs.services.revisions import DealRows, deal_changes, live_deals
from lbs.services.slot_columns import SlotsByKey, Titles, code_of

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# Deals whose validity ended this long before the load are not loaded.
HISTORY = timedelta(days=1)
# Deals kept as DealRecord tuples between requests, until the book changes (DealBook._deal).
# A page makes at most a few dozen: past this many, all go and the next pages make theirs
# again.
_KEPT_DEALS = 4_096
_COLUMNS = (
    "merchant", "valid_from", "valid_until", "ended", "total", "claimed",
    "list_price", "deal_price", "discount", "pattern", "kind", "currency",
    "lat", "lng", "category",  # the merchant's
    "terms",  # position in TERMS
)  # fmt: skip
_FLOATS = ("discount", "lat", "lng")
STATUSES = ("draft", "published", "paused", "ended")
# (payment, refund_policy): how a deal is paid for and refunded.
TERMS = (("at_counter", "anytime"), ("at_counter", "none"), ("prepaid", "anytime"), ("prepaid", "none"))
PUBLISHED = STATUSES.index("published")


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class Claimable:
    """The merchants with a deal claimable at an instant, nearest first (ties by id)."""

    merchant_ids: IntArray
    chord2: FloatArray
    ends_us: IntArray  # when the merchant's best deal stops being claimable


@dataclass(frozen=True)
class BestDeals:
    """Of some merchants, those with a claimable deal: its numbers (one row per merchant)."""

    positions: IntArray  # into the merchants asked about
    discount: FloatArray
    ends_us: IntArray
    total: IntArray  # -1: unlimited
    claimed: IntArray


class DealBook:
    """Every published deal of the active merchants, with what claimability needs as arrays."""

    def __init__(
        self, resolutions: Sequence[int], refresh_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.resolutions = tuple(resolutions)
        self.refresh_s = refresh_s
        self._polls = PollSchedule(refresh_s, clock)
        self._lock = threading.Lock()
        self.loaded = False
        self.floor = EPOCH
        self.horizon = 0
        self._version = 0  # moves with every change, for what is cached
        self._reset()

    def _reset(self) -> None:
        # Rows ("slots") by deal id and by merchant, and titles: arrays, not an object per
        # row, so that the workers keep sharing them with the master (slot_columns).
        self._n = 0  # slots in use
        self._slot = SlotsByKey()
        self._by_merchant = SlotsByKey()
        self._titles = Titles()
        self._kinds: list[str] = []  # the "kind" and "currency" columns' codes
        self._currencies: list[str] = []
        self._patterns = WindowPatterns()
        self._ids = np.zeros(0, dtype=np.int64)
        self._status = np.zeros(0, dtype=np.int8)  # position in STATUSES
        self._active = np.zeros(0, dtype=bool)  # the merchant is active
        self._arrays: dict[str, npt.NDArray[Any]] = {
            name: np.zeros(0, dtype=np.float64 if name in _FLOATS else np.int64) for name in _COLUMNS
        }
        self._index = NearbyIndex(N_CATEGORIES, resolutions=self.resolutions)
        self._version += 1
        self._deals: dict[int, DealRecord] = {}  # slot -> the row's record, at _deals_version
        self._deals_version = self._version
        # merchants_with_deals' answers: started -> (version, valid from, until (µs), ids)
        self._dealers: dict[bool, tuple[int, int, int, IntArray]] = {}

    # -- loading and polling -------------------------------------------------------

    def load(self, session: Session, now: datetime) -> None:
        """Every deal that may still be shown: published or paused, valid until after now - HISTORY."""
        floor = now - HISTORY
        unbounded_statements(session)
        horizon, rows = live_deals(session, floor)
        with self._lock:
            self._reset()
            self.floor, self.horizon = floor, horizon
            self._apply(rows, index=False)
            n, a = self._n, self._arrays
            self._slot.build(self._ids[:n])
            self._by_merchant.build(a["merchant"][:n])
            self._titles.fold(n)
            # One build rather than an upsert per deal.
            slots = np.flatnonzero(self._active[:n])
            self._index = NearbyIndex(
                N_CATEGORIES,
                slots,
                a["lat"][slots],
                a["lng"][slots],
                a["category"][slots],
                resolutions=self.resolutions,
            )
            self._polls.polled()
            self.loaded = True

    def mark_stale(self) -> None:
        self._polls.mark_stale()

    def refresh_if_due(self, session: Session) -> None:
        if not self.loaded:
            # Its own transaction, unbounded: every later request needs the book.
            with deadline.unbounded(), Session(with_transactions(session)) as own:
                self.load(own, datetime.now(UTC))
            return
        if not self._polls.due():
            return
        with self._lock:
            if not self._polls.due():
                return
            self._polls.polled()
            self.horizon, rows = deal_changes(session, self.horizon)
            self._apply(rows)

    def merchants_changed(self, changes: Iterable[tuple[int, float, float, str, str, str]]) -> None:
        """Merchant writes seen by the live index: (id, lat, lng, category, status, timezone)."""
        with self._lock:
            self._version += 1
            for merchant_id, lat, lng, category, status, tz in changes:
                if merchant_id not in self._by_merchant:
                    continue
                active, code = status == "active", CATEGORY_CODES[category]
                slots = self._by_merchant.of(merchant_id)
                a = self._arrays
                a["lat"][slots], a["lng"][slots], a["category"][slots] = lat, lng, code
                for slot in slots:
                    self._active[slot] = active
                    pattern = self._patterns[a["pattern"][slot]]
                    a["pattern"][slot] = self._patterns.intern(pattern.stored, tz)
                    if active:
                        self._index.upsert(slot, lat, lng, code)
                    else:
                        self._index.remove(slot)

    def _apply(self, rows: DealRows, index: bool = True) -> None:
        """Take in deal rows (deal_changes' columns), new or seen before."""
        rows = [r for r in rows if r.valid_until > self.floor]
        if not rows:
            return
        self._version += 1
        slots = np.array([self._slot_of(r.id, r.merchant_id) for r in rows], dtype=np.int64)
        columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
        for slot, r in zip(slots.tolist(), rows, strict=True):
            self._titles[slot] = r.title
            columns["kind"].append(code_of(self._kinds, r.kind))
            columns["currency"].append(code_of(self._currencies, r.currency))
            columns["lat"].append(r.lat)
            columns["lng"].append(r.lon)
            columns["category"].append(CATEGORY_CODES[r.category])
            columns["merchant"].append(r.merchant_id)
            columns["valid_from"].append(micros(r.valid_from))
            columns["valid_until"].append(micros(r.valid_until))
            columns["ended"].append(NEVER if r.ended_at is None else micros(r.ended_at))
            columns["total"].append(-1 if r.quantity_total is None else r.quantity_total)
            columns["claimed"].append(r.quantity_claimed)
            columns["list_price"].append(r.list_price_minor)
            columns["deal_price"].append(r.deal_price_minor)
            columns["pattern"].append(self._patterns.intern(r.windows, r.timezone))
            columns["terms"].append(TERMS.index((r.payment, r.refund_policy)))
        for name, values in columns.items():
            if name != "discount":
                self._arrays[name][slots] = values
        a = self._arrays
        a["discount"][slots] = 1.0 - a["deal_price"][slots] / a["list_price"][slots]
        self._status[slots] = [STATUSES.index(r.status) for r in rows]
        self._active[slots] = [r.merchant_status == "active" for r in rows]
        if index:
            self._slot.settle(self._ids[: self._n])
            self._by_merchant.settle(a["merchant"][: self._n])
            self._titles.settle(self._n)
            for slot, r in zip(slots.tolist(), rows, strict=True):
                if r.merchant_status == "active":
                    self._index.upsert(slot, r.lat, r.lon, CATEGORY_CODES[r.category])
                else:
                    self._index.remove(slot)

    def _slot_of(self, deal_id: int, merchant_id: int) -> int:
        known = self._slot.of(deal_id)
        if known:
            return known[0]
        slot = self._n
        self._n += 1
        if slot >= len(self._ids):
            capacity = max(1024, 2 * len(self._ids))
            self._ids = np.resize(self._ids, capacity)
            self._status = np.resize(self._status, capacity)
            self._active = np.resize(self._active, capacity)
            self._arrays = {name: np.resize(a, capacity) for name, a in self._arrays.items()}
        self._ids[slot] = deal_id
        self._arrays["merchant"][slot] = merchant_id
        self._slot.add(deal_id, slot)
        self._by_merchant.add(merchant_id, slot)
        return slot

    # -- reads ---------------------------------------------------------------------

    def covers(self, at: datetime) -> bool:
        """Whether the book holds every deal that could be shown at ``at``."""
        return self.loaded and at > self.floor

    def _claimable(self, slots: IntArray, at: datetime) -> tuple[npt.NDArray[np.bool_], IntArray]:
        """Which of ``slots`` can be claimed at ``at``, and until when (deal_state + Schedule)."""
        a, at_us = self._arrays, micros(at)
        ok = (
            self._shown_many(slots, at)
            & (a["valid_from"][slots] <= at_us)
            & ((a["total"][slots] < 0) | (a["claimed"][slots] < a["total"][slots]))
        )
        patterns = a["pattern"][slots]
        window_ends = np.empty(len(slots), dtype=np.int64)
        for p in np.unique(patterns[ok]).tolist():
            window_ends[patterns == p] = self._patterns[p].window_ends(at, at_us)
        ok &= np.where(ok, window_ends, -1) >= 0
        return ok, np.minimum(np.where(ok, window_ends, 0), a["valid_until"][slots])

    def _best_per_merchant(self, slots: IntArray, ends: IntArray) -> IntArray:
        """Positions into ``slots`` of each merchant's best deal: the largest discount, then
        the soonest end, then the lowest id (deal_offers._best)."""
        a = self._arrays
        order = np.lexsort((self._ids[slots], ends, -a["discount"][slots], a["merchant"][slots]))
        merchants = a["merchant"][slots][order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = merchants[1:] != merchants[:-1]
        return order[first]

    def claimable_near(
        self, lat: float, lng: float, radius_m: float, at: datetime, categories: Sequence[int] | None
    ) -> Claimable:
        """Active merchants within the radius with a deal claimable at ``at``, nearest first."""
        with self._lock:
            slots, chord2 = self._index.within(lat, lng, radius_m, categories)
            ok, ends = self._claimable(slots, at)
            slots, chord2, ends = slots[ok], chord2[ok], ends[ok]
            best = self._best_per_merchant(slots, ends)
            merchants = self._arrays["merchant"][slots[best]]
            chord2, ends = chord2[best], ends[best]
        order = np.lexsort((merchants, chord2))
        return Claimable(merchants[order], chord2[order], ends[order])

    def best_claimable(self, merchant_ids: Sequence[int], at: datetime) -> BestDeals:
        """For each of ``merchant_ids`` with a deal claimable at ``at``: its best deal's numbers."""
        with self._lock:
            positions, slots = self._by_merchant.of_many(merchant_ids)
            ok, ends = self._claimable(slots, at)
            positions, slots, ends = positions[ok], slots[ok], ends[ok]
            best = self._best_per_merchant(slots, ends)
            slots, a = slots[best], self._arrays
            return BestDeals(
                positions[best], a["discount"][slots], ends[best], a["total"][slots], a["claimed"][slots]
            )

    def offers(self, merchant_ids: Iterable[int], at: datetime) -> dict[int, MerchantOffer]:
        """deal_offers.best_offers from the book: each merchant's best claimable deal, or the next."""
        ids = list(dict.fromkeys(merchant_ids))
        result = {}
        with self._lock:
            positions, slots = self._by_merchant.of_many(ids)  # every merchant's slots at once
            shown = self._shown_many(slots, at)
            by_merchant: dict[int, list[DealAt]] = {}
            for position, slot in zip(positions[shown].tolist(), slots[shown].tolist(), strict=True):
                deal = DealAt.of(self._deal(slot), self._patterns[self._arrays["pattern"][slot]].tz.key, at)
                by_merchant.setdefault(ids[position], []).append(deal)
            for merchant_id, offers in by_merchant.items():
                result[merchant_id] = merchant_offer(offers)
        return result

    def merchants_with_deals(self, at: datetime, *, started: bool = False) -> IntArray:
        """Active merchants with a published deal not over at ``at`` (begun, with ``started``),
        ascending. Kept until the book changes or ``at`` crosses a deal's start or end: a map
        asks this of every deal on each request, with ``at`` a little later each time."""
        at_us = micros(at)
        with self._lock:
            cached = self._dealers.get(started)
            if cached is not None and cached[0] == self._version and cached[1] <= at_us < cached[2]:
                return cached[3]
            n, a = self._n, self._arrays
            shown = (self._status[:n] == PUBLISHED) & self._active[:n]
            edges = [a["valid_until"][:n][shown], a["ended"][:n][shown]]
            keep = shown & (at_us < a["valid_until"][:n]) & (at_us < a["ended"][:n])
            if started:
                keep &= a["valid_from"][:n] <= at_us
                edges.append(a["valid_from"][:n][shown])
            merchants = np.sort(a["merchant"][:n][keep])
            if len(merchants):  # unique, without np.unique's second sort and copies
                merchants = merchants[np.concatenate(([True], merchants[1:] != merchants[:-1]))]
            # The answer holds while no deal starts or ends: [the last edge at or before at, the next).
            every = np.concatenate(edges)
            before, after = every[every <= at_us], every[every > at_us]
            lo = int(before.max()) if len(before) else np.iinfo(np.int64).min
            hi = int(after.min()) if len(after) else NEVER
            self._dealers[started] = (self._version, lo, hi, merchants)
            return merchants

    def _shown_many(self, slots: IntArray, at: datetime) -> npt.NDArray[np.bool_]:
        """deal_offers._not_over, per slot: published, at an active merchant, not ended or past."""
        a, at_us = self._arrays, micros(at)
        return (
            (self._status[slots] == PUBLISHED)
            & self._active[slots]
            & (at_us < a["valid_until"][slots])
            & (at_us < a["ended"][slots])
        )

    def deal(self, deal_id: int) -> DealRecord | None:
        """The deal as the book holds it, or None."""
        with self._lock:
            slots = self._slot.of(deal_id)
            return self._deal(slots[0]) if slots else None

    def _deal(self, slot: int) -> DealRecord:
        """The row with the columns DealAt.of and deal_summary read; the same tuple until the
        book next changes."""
        if self._deals_version != self._version or len(self._deals) >= _KEPT_DEALS:
            self._deals.clear()
            self._deals_version = self._version
        deal = self._deals.get(slot)
        if deal is None:
            deal = self._deals[slot] = self._new_deal(slot)
        return deal

    def _new_deal(self, slot: int) -> DealRecord:
        a = self._arrays
        title = self._titles[slot]
        kind, currency = self._kinds[a["kind"][slot]], self._currencies[a["currency"][slot]]
        total, ended = int(a["total"][slot]), int(a["ended"][slot])
        return DealRecord(
            id=int(self._ids[slot]),
            merchant_id=int(a["merchant"][slot]),
            title=title,
            kind=kind,
            currency=currency,
            list_price_minor=int(a["list_price"][slot]),
            deal_price_minor=int(a["deal_price"][slot]),
            quantity_total=None if total < 0 else total,
            quantity_claimed=int(a["claimed"][slot]),
            valid_from=from_micros(int(a["valid_from"][slot])),
            valid_until=from_micros(int(a["valid_until"][slot])),
            ended_at=None if ended == NEVER else from_micros(ended),
            windows=self._patterns[a["pattern"][slot]].raw,
            status=STATUSES[self._status[slot]],
            payment=TERMS[a["terms"][slot]][0],
            refund_policy=TERMS[a["terms"][slot]][1],
        )

    @property
    def size(self) -> int:
        return self._n
