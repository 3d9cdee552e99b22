"""Sets of user ids as insights store them (sorted bytes, a flag per user), and counting their unions."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]
# Header: the number of ids and their width in bytes (4 when every id fits, else 8).
_HEADER = struct.Struct("<IB")
_WIDTHS: dict[int, np.dtype[np.unsignedinteger[Any] | np.signedinteger[Any]]] = {
    4: np.dtype("<u4"),
    8: np.dtype("<i8"),
}
EMPTY: Ids = np.zeros(0, dtype=np.int64)


def encode(ids: Ids, flags: Flags) -> bytes:
    """``ids`` sorted and unique (int64), ``flags`` one per id: the ids as they are (4 bytes
    each below 2^32), then a bit per flag. Not delta-coded: reading is what is timed (a read
    decodes thousands of these), and one np.frombuffer is 10x faster than undoing gaps."""
    count = len(ids)
    width = 4 if count == 0 or int(ids[-1]) < 1 << 32 else 8
    return b"".join(
        (_HEADER.pack(count, width), ids.astype(_WIDTHS[width]).tobytes(), np.packbits(flags).tobytes())
    )


def decode_ids(blob: bytes) -> Ids:
    count, width = _HEADER.unpack_from(blob)
    return np.frombuffer(blob, dtype=_WIDTHS[width], count=count, offset=_HEADER.size).astype(np.int64)


def decode(blob: bytes) -> tuple[Ids, Flags]:
    count, width = _HEADER.unpack_from(blob)
    ids = np.frombuffer(blob, dtype=_WIDTHS[width], count=count, offset=_HEADER.size).astype(np.int64)
    offset = _HEADER.size + count * width
    flags = np.unpackbits(np.frombuffer(blob, dtype=np.uint8, offset=offset), count=count).astype(bool)
    return ids, flags


def merge(parts: Iterable[tuple[Ids, Flags]]) -> tuple[Ids, Flags]:
    """The union of several flagged sets; a user's flag is set if it is set in any of them."""
    listed = list(parts)
    if not listed:
        return EMPTY, np.zeros(0, dtype=bool)
    ids = np.concatenate([p[0] for p in listed])
    flags = np.concatenate([p[1] for p in listed])
    order = np.lexsort((~flags, ids))  # by id, a flagged copy first
    ids, flags = ids[order], flags[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return ids[first], flags[first]


def union(sets: Iterable[Ids]) -> Ids:
    listed = list(sets)
    return np.unique(np.concatenate(listed)) if listed else EMPTY


# A bitmap of up to this many ids (bytes) counts distinct ids; beyond it, np.unique does.
BITMAP_IDS = 1 << 27


class DistinctCounter:
    """Counts the distinct ids of unions of sets, as a read sums a merchant's days: a byte per
    id from 0 to the largest seen (user ids come from a sequence), marked and unmarked per
    union (linear in the ids, where np.unique sorts or hashes them: 10x faster on a year of
    days). The marks grow on demand: no pass over the sets up front."""

    def __init__(self) -> None:
        self._marks = np.zeros(0, dtype=bool)

    def count(self, sets: Iterable[Ids]) -> int:
        """How many distinct ids the sets hold together (each sorted)."""
        listed = [s for s in sets if len(s)]
        if not listed:
            return 0
        if len(listed) == 1:
            return len(listed[0])
        low, high = min(int(s[0]) for s in listed), max(int(s[-1]) for s in listed)
        if low < 0 or high >= BITMAP_IDS:
            return len(union(listed))
        if high >= len(self._marks):  # every mark is clear between counts: nothing to copy
            self._marks = np.zeros(min(BITMAP_IDS, max(high + 1, 2 * len(self._marks))), dtype=bool)
        ids = np.concatenate(listed)
        self._marks[ids] = True
        count = int(np.count_nonzero(self._marks[low : high + 1]))
        self._marks[ids] = False
        return count
