"""Sets of user ids as insights store them: sorted, delta-coded bytes, with a flag per user."""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]
# Header: the number of ids, the first id, and the byte width of the gaps that follow.
_HEADER = struct.Struct("<IqB")
_WIDTHS = ((1, np.uint8), (2, np.uint16), (4, np.uint32), (8, np.uint64))
EMPTY: Ids = np.zeros(0, dtype=np.int64)


def encode(ids: Ids, flags: Flags) -> bytes:
    """``ids`` sorted and unique (int64), ``flags`` one per id. A day's users of a merchant's
    bucket are a few thousand ids close together: about 1-2 bytes each."""
    count = len(ids)
    if count == 0:
        return _HEADER.pack(0, 0, 1)
    gaps = np.diff(ids).astype(np.uint64)
    largest = int(gaps.max()) if len(gaps) else 0
    width, dtype = next((w, t) for w, t in _WIDTHS if largest < 1 << (8 * w))
    return b"".join(
        (_HEADER.pack(count, int(ids[0]), width), gaps.astype(dtype).tobytes(), np.packbits(flags).tobytes())
    )


def decode_ids(blob: bytes) -> Ids:
    count, first, width = _HEADER.unpack_from(blob)
    if count == 0:
        return EMPTY
    dtype = dict(_WIDTHS)[width]
    gaps = np.frombuffer(blob, dtype=dtype, count=count - 1, offset=_HEADER.size)
    ids = np.empty(count, dtype=np.int64)
    ids[0] = first
    np.cumsum(gaps, dtype=np.int64, out=ids[1:])
    ids[1:] += first
    return ids


def decode(blob: bytes) -> tuple[Ids, Flags]:
    ids = decode_ids(blob)
    count, _, width = _HEADER.unpack_from(blob)
    offset = _HEADER.size + max(count - 1, 0) * width
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
