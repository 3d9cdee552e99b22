"""The view cache answers only for the index generation and the very dealers array an
entry was computed with, keeps within its byte budget, and pins no dealers array."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from lbs.services.view_cache import View, ViewCache


def test_an_entry_answers_only_for_its_generation_and_dealers() -> None:
    cache = ViewCache(max_bytes=100)
    dealers = np.array([1, 2, 3])
    cache.put("box", View.of(7, dealers, b"[1]", 1))

    assert cache.get("box", 7, dealers) is not None
    assert cache.get("box", 8, dealers) is None  # the index changed
    assert cache.get("box", 7, dealers.copy()) is None  # equal numbers, another array: the book changed
    assert cache.get("other", 7, dealers) is None


def test_the_budget_holds_and_a_body_over_it_is_not_kept() -> None:
    cache = ViewCache(max_bytes=10)
    dealers = np.array([1])
    cache.put("big", View.of(1, dealers, b"x" * 11, 0))
    cache.put("a", View.of(1, dealers, b"x" * 6, 0))
    cache.put("b", View.of(1, dealers, b"x" * 6, 0))  # pushes "a" out

    assert [cache.get(k, 1, dealers) is not None for k in ("big", "a", "b")] == [False, False, True]


def test_an_entry_does_not_keep_its_dealers_alive() -> None:
    cache = ViewCache(max_bytes=100)
    dealers = np.arange(100_000)
    alive = weakref.ref(dealers)
    cache.put("box", View.of(1, dealers, b"[]", 0))

    del dealers
    gc.collect()

    assert alive() is None


def test_get_or_draw_draws_once_per_terms_and_keeps_nothing_without_a_key() -> None:
    cache = ViewCache(max_bytes=100)
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
