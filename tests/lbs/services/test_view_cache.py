"""The view cache answers only for the index generation and the very dealers array an
entry was computed with, keeps within its byte budget (each entry counted with what it
costs beside its body), keeps the entries of one generation and dealers at a time, and
pins no dealers array."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np

from lbs.geo.h3box import Box
from lbs.services.view_cache import ENTRY_BYTES, View, ViewCache


def test_an_entry_answers_only_for_its_generation_and_dealers() -> None:
    cache = ViewCache(max_bytes=10_000)
    dealers = np.array([1, 2, 3])
    cache.put("box", View.of(7, dealers, b"[1]", 1))

    assert cache.get("box", 7, dealers) is not None
    assert cache.get("box", 8, dealers) is None  # the index changed
    assert cache.get("box", 7, dealers.copy()) is None  # equal numbers, another array: the book changed
    assert cache.get("other", 7, dealers) is None


def test_the_budget_holds_and_a_body_over_it_is_not_kept() -> None:
    cache = ViewCache(max_bytes=2 * ENTRY_BYTES + 10)
    dealers = np.array([1])
    cache.put("big", View.of(1, dealers, b"x" * (ENTRY_BYTES + 11), 0))
    cache.put("a", View.of(1, dealers, b"x" * 6, 0))
    cache.put("b", View.of(1, dealers, b"x" * 6, 0))  # pushes "a" out

    assert [cache.get(k, 1, dealers) is not None for k in ("big", "a", "b")] == [False, False, True]


def test_distinct_empty_answers_stay_within_the_budget() -> None:
    """Empty answers (a box or tile with no merchant: 2 bytes, or none) counted by their
    bodies alone would never fill the budget: 20,000 boxes of them held 11 MB in a 64 KB cache."""
    budget = 64 * 1024
    cache = ViewCache(max_bytes=budget)
    dealers = np.array([1])
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            box = Box(-170 + i * 0.01, -60.0 + i * 0.001, -169.99 + i * 0.01, -59.99 + i * 0.001)
            cache.get_or_draw(("clusters", box, 9, None), 1, dealers, lambda: (b"[]", 0))
            cache.get_or_draw(("tile", 16, i, i), 1, dealers, lambda: (b"", 0))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert len(cache) <= budget // ENTRY_BYTES
    assert held <= 1.25 * budget  # ENTRY_BYTES is a mean; the LRU's tables come on top


def test_newer_terms_drop_the_entries_of_earlier_ones() -> None:
    """Neither the generation nor the dealers come back once they have moved on, so their
    entries could only wait to be pushed out: they go as soon as newer terms are kept."""
    cache = ViewCache(max_bytes=100 * ENTRY_BYTES)
    first, second = np.array([1]), np.array([1])
    for key in ("a", "b", "c"):
        cache.put(key, View.of(1, first, b"[]", 0))
    assert len(cache) == 3

    cache.put("a", View.of(2, first, b"[]", 0))  # the index moved
    assert len(cache) == 1 and cache.get("b", 1, first) is None

    cache.put("b", View.of(2, second, b"[]", 0))  # the book's new array, while the old one lives
    assert len(cache) == 1 and cache.get("b", 2, second) is None  # not kept: the arrays are not ordered
    del first
    gc.collect()
    cache.put("b", View.of(2, second, b"[]", 0))  # the old array gone: the new one is current
    assert len(cache) == 1 and cache.get("b", 2, second) is not None


def test_a_late_answer_of_earlier_terms_leaves_the_newer_entries() -> None:
    """A request that read the terms before they moved puts its answer after the newer ones."""
    cache = ViewCache(max_bytes=100 * ENTRY_BYTES)
    dealers = np.array([1])
    cache.put("new", View.of(5, dealers, b"[]", 0))
    cache.put("late", View.of(4, dealers, b"[]", 0))

    assert cache.get("new", 5, dealers) is not None and cache.get("late", 4, dealers) is None
    assert len(cache) == 1


def test_an_entry_does_not_keep_its_dealers_alive() -> None:
    cache = ViewCache(max_bytes=10_000)
    dealers = np.arange(100_000)
    alive = weakref.ref(dealers)
    cache.put("box", View.of(1, dealers, b"[]", 0))

    del dealers
    gc.collect()

    assert alive() is None


def test_get_or_draw_draws_once_per_terms_and_keeps_nothing_without_a_key() -> None:
    cache = ViewCache(max_bytes=10_000)
    dealers = np.array([1])
    drawn: list[int] = []

    def draw() -> tuple[bytes, int]:
        drawn.append(1)
        return b"[]", len(drawn)

    assert cache.get_or_draw("box", 1, dealers, draw).total == 1
    assert cache.get_or_draw("box", 1, dealers, draw).total == 1  # kept
    assert cache.get_or_draw("box", 2, dealers, draw).total == 2  # the index moved
    assert cache.get_or_draw(None, 2, dealers, draw).total == 3
    assert cache.get_or_draw(None, 2, dealers, draw).total == 4  # never kept
