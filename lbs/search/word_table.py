"""One immutable table of merchants' words: a sorted vocabulary and, per word, its merchants.

The vocabulary is one UTF-8 blob with offsets rather than a Python string per word (a
city of a million merchants has about as many distinct words: house numbers, names), and
UTF-8 sorts bytes in code point order, so a prefix's words are one contiguous run: those
from the prefix itself up to the prefix followed by 0xFF, a byte UTF-8 never uses. Their
postings (merchant ids ascending within a word, and where each merchant has the word) are
therefore one slice of the posting arrays too.
"""

from __future__ import annotations

import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from lbs.search.words import IN_NAME

IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]


class Vocabulary(Sequence[bytes]):
    """Sorted distinct words as UTF-8, in one blob: bisect searches it like a list."""

    def __init__(self, words: Sequence[bytes]) -> None:
        self._blob = b"".join(words)
        lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        self._offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._starts: list[int] = self._offsets.tolist()  # list indexing: ~4x a numpy scalar's

    def __len__(self) -> int:
        return len(self._starts) - 1

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return self._blob[self._starts[i] : self._starts[i + 1]]

    def span(self, word: bytes, prefix: bool) -> tuple[int, int]:
        """Positions [lo, hi) of ``word`` (one or none), or with ``prefix`` of every word
        beginning with it."""
        lo = bisect_left(self, word)
        if prefix:
            return lo, bisect_left(self, word + b"\xff", lo)
        return lo, lo + int(lo < len(self) and self[lo] == word)

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._offsets.nbytes + 8 * len(self._starts)


class WordTable:
    """Per word of the vocabulary, the merchants having it: ids ascending, and where
    (lbs.search.words.IN_NAME / IN_OTHER bits)."""

    def __init__(self, vocabulary: Vocabulary, offsets: IntArray, ids: IntArray, where: Int8Array) -> None:
        self.vocabulary = vocabulary
        self.offsets = offsets  # word w's postings: offsets[w]:offsets[w + 1]
        self.ids = ids
        self.where = where

    @classmethod
    def build(cls, words: Sequence[str], word_of: IntArray, ids: IntArray, where: Int8Array) -> WordTable:
        """From postings naming their word by position in ``words`` (distinct, any order);
        words without a posting are left out."""
        encoded = [w.encode() for w in words]
        order = sorted(range(len(encoded)), key=encoded.__getitem__)
        counts = np.bincount(word_of, minlength=len(encoded))
        kept = [i for i in order if counts[i]]
        rank = np.full(len(encoded), -1, dtype=np.int64)
        rank[kept] = np.arange(len(kept), dtype=np.int64)
        ranked = rank[word_of]
        by = np.lexsort((ids, ranked))
        offsets = np.concatenate([[0], np.cumsum(counts[kept])]).astype(np.int64)
        return cls(Vocabulary([encoded[i] for i in kept]), offsets, ids[by], where[by])

    @classmethod
    def empty(cls) -> WordTable:
        return cls(Vocabulary([]), np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0, np.int8))

    def postings(self, word: str, prefix: bool) -> tuple[IntArray, IntArray]:
        """The merchants with ``word`` (or, with ``prefix``, a word beginning with it) and a
        weight each: 4 the word itself in the name, 3 a longer word in the name, 2 and 1 the
        same in the category or tags. A merchant may come more than once (several words
        with the prefix)."""
        key = word.encode()
        lo, hi = self.vocabulary.span(key, prefix)
        start, end = int(self.offsets[lo]), int(self.offsets[hi])
        weights = np.where(self.where[start:end] & IN_NAME, 3, 1).astype(np.int64)
        if lo < hi and self.vocabulary[lo] == key:  # the word itself sorts first among its extensions
            weights[: int(self.offsets[lo + 1]) - start] += 1
        return self.ids[start:end], weights

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return self.vocabulary.nbytes + self.offsets.nbytes + self.ids.nbytes + self.where.nbytes


class WordTableBuilder:
    """Collects merchants' words, then builds a WordTable (postings kept in compact arrays
    while collecting: a million merchants have a few million)."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._word_of = array.array("q")
        self._ids = array.array("q")
        self._where = array.array("b")

    def add(self, merchant_id: int, words: dict[str, int]) -> None:
        positions = self._positions
        for word, where in words.items():
            position = positions.get(word)
            if position is None:
                position = positions[word] = len(positions)
            self._word_of.append(position)
            self._ids.append(merchant_id)
            self._where.append(where)

    def add_table(self, table: WordTable, keep: npt.NDArray[np.bool_]) -> None:
        """Every posting of ``table`` where ``keep`` holds (compaction)."""
        words = [w.decode() for w in table.vocabulary]
        positions = np.array([self._positions.setdefault(w, len(self._positions)) for w in words], np.int64)
        word_of = np.repeat(positions, np.diff(table.offsets))[keep]
        self._word_of.extend(word_of.tolist())
        self._ids.extend(table.ids[keep].tolist())
        self._where.extend(table.where[keep].tolist())

    def add_all(self, merchants: Iterable[tuple[int, dict[str, int]]]) -> None:
        for merchant_id, words in merchants:
            self.add(merchant_id, words)

    def build(self) -> WordTable:
        words = list(self._positions)
        return WordTable.build(
            words,
            np.frombuffer(self._word_of, dtype=np.int64),
            np.frombuffer(self._ids, dtype=np.int64),
            np.frombuffer(self._where, dtype=np.int8),
        )
