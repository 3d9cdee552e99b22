"""Candidates read by position: a Keyed neighbourhood gives what sorting all of it gives, and
a sample by positions is the sample rng.choice draws from the list of the others."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from recommender.nearby import Keyed, Listed, nearby_of, sampled_positions


@st.composite
def keyed(draw: st.DrawFn) -> Keyed:
    n = draw(st.integers(1, 300))
    # Few distinct keys: ties (broken by id) are common.
    keys = np.asarray(draw(st.lists(st.integers(0, draw(st.integers(0, 40))), min_size=n, max_size=n)), float)
    ids = np.asarray(draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n, unique=True)), np.int64)
    return Keyed(ids, keys, lambda k: k * 10.0)


@given(keyed(), st.data())
def test_keyed_reads_the_positions_of_the_sorted_order(near: Keyed, data: st.DataObject) -> None:
    order = np.lexsort((near.ids, near.keys))
    positions = np.asarray(sorted(data.draw(st.sets(st.integers(0, len(near) - 1)))), dtype=np.int64)

    ids, metres = near.take(positions)

    np.testing.assert_array_equal(ids, near.ids[order][positions])
    np.testing.assert_array_equal(metres, near.keys[order][positions] * 10.0)
    np.testing.assert_array_equal(near.take(np.arange(len(near)))[0], near.ids[order])
    item = data.draw(st.sampled_from(near.ids.tolist()))
    assert near.position(item) == int(np.flatnonzero(near.ids[order] == item)[0])
    assert near.position(-1) == -1


def test_keyed_reads_a_large_neighbourhood_with_ties_as_sorting_it_does() -> None:
    rng = np.random.default_rng(4)
    keys = np.r_[rng.random(30_000) * 1e-7, np.full(500, 5e-8), np.zeros(3)]  # a tied run, and zeros
    near = Keyed(rng.permutation(10**6)[: len(keys)].astype(np.int64), keys, lambda k: k)
    order = np.lexsort((near.ids, near.keys))
    in_tie = int((keys < 5e-8).sum()) + 250
    positions = np.unique(np.r_[0, 1, 2, in_tie, rng.choice(len(keys), 100, replace=False)])

    ids, _ = near.take(positions)

    np.testing.assert_array_equal(ids, near.ids[order][positions])
    assert near.position(int(near.ids[order][20_000])) == 20_000


@given(st.integers(2, 5000), st.data(), st.integers(0, 2**32))
def test_sampled_positions_are_rng_choice_over_the_others(n: int, data: st.DataObject, seed: int) -> None:
    at = data.draw(st.integers(0, n - 1))
    limit = data.draw(st.integers(2, n))
    others = np.flatnonzero(np.arange(n) != at)
    want = np.sort(np.r_[at, np.random.default_rng(seed).choice(others, limit - 1, replace=False)])

    got = sampled_positions(n, at, limit, np.random.default_rng(seed))

    np.testing.assert_array_equal(got, want)


def test_a_listing_source_is_read_as_listed() -> None:
    def source(origin: int) -> tuple[list[int], list[float]]:
        return [origin, 7, 3], [0.0, 50.0, 20.0]  # a source's own order, not by distance

    near = nearby_of(source)(5)  # type: ignore[arg-type]

    assert isinstance(near, Listed) and len(near) == 3 and near.position(3) == 2 and near.position(4) == -1
    ids, metres = near.take(np.array([0, 2]))
    assert ids.tolist() == [5, 3] and metres.tolist() == [0.0, 20.0]
