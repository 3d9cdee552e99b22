"""Lookups and text for the deal book's rows ("slots") without a Python object per row.

The book is loaded in the gunicorn master and shared copy-on-write with the workers. A
dict of lists or a list of tuples per row puts ~70 MB of small objects (at 125,000
deals) on pages that any touch copies: a lookup increments the reference counts of the
list and ints it returns, and the worker's allocator fills free blocks between them. So
each worker soon held a private copy of most of them. Here, what the load built lives in
a few arrays and one bytes object; only rows added or changed since (by the polls, in
the worker) are in small dicts, folded into the arrays once they grow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lbs.geo.h3levels import ranges

IntArray = npt.NDArray[np.int64]
# Rows added since the arrays were built that lookups go through a dict for, at most.
_RECENT = 1000


class SlotsByKey:
    """Slots grouped by an integer key (a deal's id; its merchant's id), in slot order."""

    def __init__(self) -> None:
        self._keys = np.zeros(0, dtype=np.int64)  # sorted
        self._slots = np.zeros(0, dtype=np.int64)  # aligned with _keys
        self._recent: dict[int, list[int]] = {}
        self._recent_rows = 0

    def build(self, keys: IntArray) -> None:
        """From ``keys[slot]`` for every slot: the arrays, and no recent rows."""
        order = np.argsort(keys, kind="stable")
        self._keys, self._slots = keys[order], order.astype(np.int64)
        self._recent, self._recent_rows = {}, 0

    def add(self, key: int, slot: int) -> None:
        """A new slot (the highest so far)."""
        self._recent.setdefault(key, []).append(slot)
        self._recent_rows += 1

    def settle(self, keys: IntArray) -> None:
        """Rebuild from every slot's key once many slots were added since the last build."""
        if self._recent_rows > _RECENT:
            self.build(keys)

    def __contains__(self, key: int) -> bool:
        i = int(np.searchsorted(self._keys, key))
        return (i < len(self._keys) and int(self._keys[i]) == key) or key in self._recent

    def of(self, key: int) -> list[int]:
        lo, hi = np.searchsorted(self._keys, [key, key + 1])
        return [*self._slots[lo:hi].tolist(), *self._recent.get(key, ())]

    def of_many(self, keys: Sequence[int]) -> tuple[IntArray, IntArray]:
        """(positions into ``keys``, slots) of every slot of each key, by position."""
        wanted = np.asarray(keys, dtype=np.int64)
        lo = np.searchsorted(self._keys, wanted, side="left")
        hi = np.searchsorted(self._keys, wanted, side="right")
        positions = np.repeat(np.arange(len(wanted), dtype=np.int64), hi - lo)
        slots = self._slots[ranges(lo, hi)]
        if self._recent:
            extra = [(i, s) for i, k in enumerate(wanted.tolist()) for s in self._recent.get(k, ())]
            if extra:
                more = np.array(extra, dtype=np.int64)
                positions, slots = (
                    np.concatenate([positions, more[:, 0]]),
                    np.concatenate([slots, more[:, 1]]),
                )
                order = np.argsort(positions, kind="stable")
                positions, slots = positions[order], slots[order]
        return positions, slots


class Titles:
    """One text per slot: those the load read in one UTF-8 blob, later ones in a dict."""

    def __init__(self) -> None:
        self._blob = b""
        self._offsets = np.zeros(1, dtype=np.int64)
        self._changed: dict[int, str] = {}

    def __setitem__(self, slot: int, title: str) -> None:
        self._changed[slot] = title

    def settle(self, n: int) -> None:
        """Fold (see fold) once many titles were set since the last fold."""
        if len(self._changed) > _RECENT:
            self.fold(n)

    def __getitem__(self, slot: int) -> str:
        title = self._changed.get(slot)
        if title is not None:
            return title
        if slot + 1 < len(self._offsets):
            return self._blob[self._offsets[slot] : self._offsets[slot + 1]].decode()
        return ""

    def fold(self, n: int) -> None:
        """Every title of slots 0..n-1 into the blob."""
        encoded = [self[slot].encode() for slot in range(n)]
        self._blob = b"".join(encoded)
        self._offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
        self._changed = {}


def code_of(values: list[str], value: str) -> int:
    """``value``'s position in ``values`` (a column's few distinct texts), added if new."""
    try:
        return values.index(value)
    except ValueError:
        values.append(value)
        return len(values) - 1
