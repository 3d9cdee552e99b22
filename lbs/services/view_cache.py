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
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache


@dataclass(frozen=True)
class View:
    generation: int
    # The deal book's dealers array, compared by identity (the same object while it holds)
    # and not kept alive: under claims the book makes a new one every poll, and entries
    # holding old ones would pin ~1 MB each.
    dealers: weakref.ref[Any]
    body: bytes
    total: int

    @classmethod
    def of(cls, generation: int, dealers: object, body: bytes, total: int) -> View:
        return cls(generation, weakref.ref(dealers), body, total)


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
        if view is None or view.generation != generation or view.dealers() is not dealers:
            return None
        return view

    def get_or_draw(
        self, key: Hashable | None, generation: int, dealers: object, draw: Callable[[], tuple[bytes, int]]
    ) -> View:
        """The view kept for ``key`` at this generation and dealers, else ``draw()``'s (body,
        total), kept. The caller reads ``generation`` and ``dealers`` before ``draw`` runs, and
        draw uses those dealers: if either moves meanwhile, the entry never matches. A key of
        None: drawn, not kept (an answer this cache cannot vouch for)."""
        view = None if key is None else self.get(key, generation, dealers)
        if view is None:
            view = View.of(generation, dealers, *draw())
            if key is not None:
                self.put(key, view)
        return view

    def put(self, key: Hashable, view: View) -> None:
        if len(view.body) > self._max_bytes:
            return
        with self._lock:
            self._views[key] = view
