"""The public representations of the merchants a process shows, kept between requests.

A page of nearby results used to read its 20 merchants' rows from the database every time:
at 1M merchants that was one round trip in every request of the distance path, which
otherwise needs none. The cache holds the most recently shown ``capacity`` merchants; the
live index drops an entry when its poll sees a write to that merchant, so an entry is as
fresh as the index itself: this worker's own writes at once, other workers' within
``index_refresh_s``.

An entry is the row's values as a tuple, its often repeated texts (category, hours, zone,
status, attribution, timestamps) shared between entries: about 0.45 KB a merchant instead of
the ~1.2 KB of a dict with texts of its own; each get() builds fresh dicts from them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from cachetools import LRUCache
from sqlalchemy.orm import Session

from lbs.services.merchants import PUBLIC_KEYS, public_merchants

# Fields whose texts repeat across merchants, kept once (sys.intern) rather than per entry.
_SHARED_TEXTS = frozenset(
    {"category", "opening_hours", "timezone", "status", "attribution", "created_at", "updated_at"}
)

Packed = tuple[Any, ...]  # values in PUBLIC_KEYS order


def _shared(key: str, value: Any) -> Any:
    return sys.intern(value) if key in _SHARED_TEXTS and isinstance(value, str) else value


def _pack(public: dict[str, Any]) -> Packed:
    return tuple(_shared(key, public[key]) for key in PUBLIC_KEYS)


class MerchantCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: LRUCache[int, Packed] = LRUCache(maxsize=max(capacity, 1))
        # Moves with every drop: a read that began before one does not store what it read,
        # which may be the row as it was before that write.
        self._generation = 0

    def get(self, session: Session, merchant_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """public_merchants(), from the cache where it can: missing ids are not in the result."""
        packed: dict[int, Packed] = {}
        missing: list[int] = []
        with self._lock:
            generation = self._generation
            for merchant_id in merchant_ids:
                entry = self._entries.get(merchant_id)
                if entry is None:
                    missing.append(merchant_id)
                else:
                    packed[merchant_id] = entry
        found = {
            merchant_id: dict(zip(PUBLIC_KEYS, entry, strict=True)) for merchant_id, entry in packed.items()
        }
        if not missing:
            return found
        read = public_merchants(session, missing)
        found.update(read)
        if self.capacity > 0:
            with self._lock:
                if generation == self._generation:
                    self._entries.update((merchant_id, _pack(public)) for merchant_id, public in read.items())
        return found

    def drop(self, merchant_ids: Iterable[int]) -> None:
        with self._lock:
            self._generation += 1
            for merchant_id in merchant_ids:
                self._entries.pop(merchant_id, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
