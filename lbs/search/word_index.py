"""The in-process word index: which merchants match a text query, and how well.

A snapshot WordTable of every merchant's words, plus the merchants written since: their
words in a small overlay (a table of its own, rebuilt when a query first needs it after a
write) and their snapshot postings marked dead. The overlay is folded into a new snapshot
when it grows, as the nearby index does with its own (lbs.geo.h3index).

A merchant matches when it has every word of the query, the last one as a prefix when the
query asks so (lbs.search.words.TextQuery). Its match score is the mean over the query's
words of how each matched (WordTable.postings' weights, divided by the best, 4): 1.0 when
every word is a whole word of the name, 0.25 when each only begins a word of the category
or a tag.

Not thread-safe: the caller serialises queries and writes (lbs.services.live_index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lbs.search.word_table import IntArray, WordTable, WordTableBuilder
from lbs.search.words import TextQuery

BEST_WEIGHT = 4
# Postings with ids up to this many times their number are deduplicated in a table by id.
_DENSE_SHARE = 16


@dataclass(frozen=True)
class TextMatches:
    """The merchants matching a query, ids ascending, each with its score in (0, 1]."""

    ids: IntArray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _best_per_merchant(ids: IntArray, weights: IntArray) -> tuple[IntArray, IntArray]:
    """Each merchant once, ids ascending, with its highest weight."""
    if not len(ids) or bool(np.all(ids[1:] > ids[:-1])):  # one word's postings: already so
        return ids, weights
    top = int(ids.max())
    if len(ids) * _DENSE_SHARE > top:
        # A short prefix's postings can be a good part of the city: marking a table by id is
        # then linear where sorting them is not. Higher weights are marked last, so they stay.
        best = np.zeros(top + 1, dtype=np.int8)
        for weight in range(1, BEST_WEIGHT + 1):
            best[ids[weights == weight]] = weight
        found = np.flatnonzero(best)
        return found.astype(np.int64), best[found].astype(np.int64)
    order = np.lexsort((-weights, ids))
    ids, weights = ids[order], weights[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return ids[first], weights[first]


def _weights_at(ids: IntArray, weights: IntArray, at: IntArray) -> IntArray:
    """The highest weight of each of ``at`` (sorted ids) among the postings, 0 where none."""
    if not len(ids):
        return np.zeros(len(at), dtype=np.int64)
    top = max(int(ids.max()), int(at[-1]))
    if len(ids) * _DENSE_SHARE > top:  # as in _best_per_merchant, without listing them all
        best = np.zeros(top + 1, dtype=np.int8)
        for weight in range(1, BEST_WEIGHT + 1):
            best[ids[weights == weight]] = weight
        return best[at].astype(np.int64)
    ids, weights = _best_per_merchant(ids, weights)
    pos = np.minimum(np.searchsorted(ids, at), len(ids) - 1)
    return np.where(ids[pos] == at, weights[pos], 0)


class WordIndex:
    """The live merchants' words; match() answers a TextQuery exactly."""

    def __init__(self, table: WordTable | None = None) -> None:
        self._base = table if table is not None else WordTable.empty()
        self._base_merchants = len(np.unique(self._base.ids))
        self._overlay: dict[int, dict[str, int]] = {}  # written since the snapshot; {} if gone
        self._overlay_table: WordTable | None = None
        self._dead: IntArray | None = None  # sorted ids of _overlay, built when needed

    def upsert(self, merchant_id: int, words: dict[str, int]) -> None:
        self._overlay[merchant_id] = words
        self._changed()

    def remove(self, merchant_id: int) -> None:
        self._overlay[merchant_id] = {}
        self._changed()

    def _changed(self) -> None:
        self._overlay_table = None
        self._dead = None
        if len(self._overlay) > 4096 + self._base_merchants // 50:
            self.compact()

    def compact(self) -> None:
        """Fold the overlay into a fresh snapshot."""
        builder = WordTableBuilder()
        builder.add_table(self._base, ~np.isin(self._base.ids, self._dead_ids()))
        builder.add_all((m, words) for m, words in self._overlay.items() if words)
        self._base = builder.build()
        self._base_merchants = len(np.unique(self._base.ids))
        self._overlay = {}
        self._overlay_table = None
        self._dead = None

    def _dead_ids(self) -> IntArray:
        if self._dead is None:
            self._dead = np.array(sorted(self._overlay), dtype=np.int64)
        return self._dead

    def _overlay_words(self) -> WordTable:
        if self._overlay_table is None:
            builder = WordTableBuilder()
            builder.add_all((m, words) for m, words in self._overlay.items() if words)
            self._overlay_table = builder.build()
        return self._overlay_table

    def _postings(self, word: str, prefix: bool) -> tuple[IntArray, IntArray]:
        """The live merchants with the word (or prefix) and the weights, a merchant possibly
        more than once."""
        ids, weights = self._base.postings(word, prefix)
        if self._overlay:
            alive = ~np.isin(ids, self._dead_ids())
            more_ids, more_weights = self._overlay_words().postings(word, prefix)
            ids = np.concatenate([ids[alive], more_ids])
            weights = np.concatenate([weights[alive], more_weights])
        return ids, weights

    def match(self, query: TextQuery) -> TextMatches:
        last = len(query.words) - 1
        postings = [self._postings(w, query.last_is_prefix and i == last) for i, w in enumerate(query.words)]
        # The narrowest word gives the candidates; each other word only weighs those.
        postings.sort(key=lambda p: len(p[0]))
        ids, total = _best_per_merchant(*postings[0])
        total = total.copy()
        for word_ids, word_weights in postings[1:]:
            if not len(ids):
                break
            weights = _weights_at(word_ids, word_weights, ids)
            keep = weights > 0
            ids, total = ids[keep], total[keep] + weights[keep]
        return TextMatches(ids, total / (BEST_WEIGHT * len(query.words)))

    @property
    def size(self) -> int:
        """Postings held (snapshot and overlay), for the footprint."""
        return len(self._base) + sum(len(w) for w in self._overlay.values())
