"""Map answers kept per worker while what they were computed from holds.

The first view of an embedded map is the same box for every visitor of the page, and a
map's cluster answers cost the most of any read to compute and to write (a whole city at
a street zoom: 6,500 features, 1 MB, ~20 ms). An answer depends on the live index, which counts its
changes (LiveIndex.generation), and on which merchants have a started deal, an array the
deal book keeps as one object until a deal starts, ends or changes: an entry is used only
while both are those it was computed from, so a kept answer is as fresh as a computed one.

Entries are bounded in bytes (LBS_VIEW_CACHE_MB), least recently used first out.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass

from cachetools import LRUCache


@dataclass(frozen=True)
class View:
    generation: int
    dealers: object  # compared by identity: the deal book's array, the same while it holds
    body: bytes
    total: int


class ViewCache:
    def __init__(self, max_bytes: int) -> None:
        self._views: LRUCache[Hashable, View] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda view: len(view.body)
        )
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: Hashable, generation: int, dealers: object) -> View | None:
        with self._lock:
            view = self._views.get(key)
        if view is None or view.generation != generation or view.dealers is not dealers:
            return None
        return view

    def put(self, key: Hashable, view: View) -> None:
        if len(view.body) > self._max_bytes:
            return
        with self._lock:
            self._views[key] = view
