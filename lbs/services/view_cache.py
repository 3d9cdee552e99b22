"""Map answers kept per worker while what they were computed from holds.

The first view of an embedded map is the same box for every visitor of the page, and a
map's cluster answers cost the most of any read to compute and to write (a whole city at
a street zoom: 6,500 features, 1 MB, ~20 ms). An answer depends on the live index, which counts its
changes (LiveIndex.generation), and on which merchants have a started deal, an array the
deal book keeps as one object until a deal starts, ends or changes: an entry is used only
while both are those it was computed from, so a kept answer is as fresh as a computed one.

Once either has moved on, no entry computed before can answer again (the generation only
grows; the book never hands out a replaced array again), so the cache keeps the entries of
one pair at a time and drops them all when an answer for a newer pair comes: under claims
the book makes a new array every poll, and the entries of earlier ones, kept until least
recently used, grew a soak's workers by ~1 MB a minute each.

Entries are bounded in bytes (LBS_VIEW_CACHE_MB), least recently used first out, each
counted with what it costs beside its body: an empty tile is 0 bytes, and counted by its
body alone, distinct empty tiles would never fill the budget.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

# An entry's memory beside its body's bytes: its key (a box or z/x/y tuple), the View, the
# bytes object, the LRU's links and dict slots. Measured with tracemalloc: ~540 bytes for a
# cluster answer's, ~400 for a tile's.
ENTRY_BYTES = 600


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

    @property
    def cost(self) -> int:
        """Bytes counted against the cache's budget."""
        return len(self.body) + ENTRY_BYTES


class ViewCache:
    def __init__(self, max_bytes: int) -> None:
        self._views: LRUCache[Hashable, View] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda view: view.cost
        )
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        # The generation and dealers every kept entry was computed with.
        self._terms: tuple[int, weakref.ref[Any]] | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._views)

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
        if view.cost > self._max_bytes:
            return
        with self._lock:
            if self._takes(view):
                self._views[key] = view

    def _takes(self, view: View) -> bool:
        """Whether ``view`` may be kept, the entries of earlier terms dropped first if it is
        newer. A request that read its terms before they moved on puts its answer after
        those of newer ones: not kept, and the newer entries stay. Two arrays of the same
        generation are not ordered: the kept one stays while anything still holds it (a
        replaced array lives only as long as the requests that read it)."""
        dealers = view.dealers()
        if dealers is None:
            return False  # already replaced: it could never answer
        if self._terms is not None:
            generation, kept = self._terms[0], self._terms[1]()
            if generation == view.generation and kept is dealers:
                return True
            if generation > view.generation or (generation == view.generation and kept is not None):
                return False
        self._views.clear()
        self._terms = (view.generation, view.dealers)
        return True
