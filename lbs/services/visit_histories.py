"""Users' recent visits as sort=relevance reads them, kept per process between requests.

A personalised page read the user's last HISTORY_VISITS visits from the event log every
time (a sort on the user's events: 19 % of a worker's request time at 100k users). A
worker now keeps each user's most recent visits, read once without an upper bound on time,
and answers any ``before`` from them when it can do so exactly: when the list holds all
the user's visits, or when every visit in it is before ``before``. Else it reads the
database as before.

Freshness. Every ``refresh_s`` a worker asks the log which users have visits recorded since
its last look (by event id) and forgets them; an entry is also forgotten ``ttl_s`` after it
was read. Event ids come from a sequence, so a visit committed after a later id was seen
(two writers racing) escapes the poll: ``ttl_s`` bounds how long such a visit is missing.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cachetools import LRUCache
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs.models import Event
from lbs.services.poll_schedule import PollSchedule
from lbs.services.relevance import HISTORY_VISITS, user_history
from recommender.training import VISIT_KINDS


@dataclass(frozen=True)
class _Visits:
    times: list[float]  # POSIX seconds, ascending (ties in event id order)
    merchant_ids: list[int]
    complete: bool  # all the user's visits, not only the most recent HISTORY_VISITS
    expires: float  # on the process's clock


class VisitHistories:
    def __init__(
        self, refresh_s: float, ttl_s: float, capacity: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._polls = PollSchedule(refresh_s, clock)
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: LRUCache[int, _Visits] = LRUCache(maxsize=max(capacity, 1))
        self._generation = 0  # moves with every forgetting (MerchantCache's reason)
        self._last_event_id: int | None = None
        self._poll_lock = threading.Lock()

    def visits(self, session: Session, user_id: int, before: datetime) -> tuple[list[float], list[int]]:
        """relevance.user_history(): the user's last HISTORY_VISITS visits before ``before``,
        oldest first, as POSIX times and merchant ids."""
        if self.capacity <= 0 or self.ttl_s <= 0:
            return user_history(session, user_id, before)
        self._poll_if_due(session)
        now = self._clock()
        with self._lock:
            generation = self._generation
            entry = self._entries.get(user_id)
        if entry is None or entry.expires <= now:
            times, merchant_ids = user_history(session, user_id, None)
            entry = _Visits(times, merchant_ids, len(times) < HISTORY_VISITS, now + self.ttl_s)
            with self._lock:
                if generation == self._generation:
                    self._entries[user_id] = entry
        cut = bisect.bisect_left(entry.times, before.timestamp())
        if cut == len(entry.times) or entry.complete:
            return entry.times[:cut], entry.merchant_ids[:cut]
        return user_history(session, user_id, before)  # visits after `before` hide older ones

    def forget(self, user_ids: list[int]) -> None:
        with self._lock:
            self._generation += 1
            for user_id in user_ids:
                self._entries.pop(user_id, None)

    def mark_stale(self) -> None:
        self._polls.mark_stale()

    def _poll_if_due(self, session: Session) -> None:
        if not self._polls.due() or not self._poll_lock.acquire(blocking=False):
            return
        try:  # one thread polls; the others go on with what is cached
            self._polls.polled()
            newest = session.execute(select(func.max(Event.id))).scalar_one() or 0
            last, self._last_event_id = self._last_event_id, newest
            if last is None:  # the first poll: nothing is cached yet
                return
            if newest > last:
                users = session.scalars(
                    select(Event.user_id)
                    .where(Event.id > last, Event.id <= newest, Event.kind.in_(VISIT_KINDS))
                    .distinct()
                ).all()
                if users:
                    self.forget([u for u in users if u is not None])
        finally:
            self._poll_lock.release()
