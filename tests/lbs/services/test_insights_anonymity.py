"""k-anonymity of insights (property tests): from one response no hidden bucket can be worked out,
and what can be worked out (total minus the visible buckets) covers k users or more."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.services import insight_sets
from lbs.services.insight_sets import DistinctCounter
from lbs.services.insights_anonymity import K, hidden_groups

KINDS = ("impression", "click", "claim", "redemption")
# A bucket: its events as (user, kind); users from a small pool, so buckets share them.
events = st.lists(st.tuples(st.integers(0, 11), st.sampled_from(KINDS)), max_size=12)
partitions = st.lists(events, min_size=1, max_size=8)


def counts(bucket: list[tuple[int, str]]) -> np.ndarray:
    return np.array([sum(1 for _, k in bucket if k == kind) for kind in KINDS])


def hide(buckets: list[list[tuple[int, str]]]) -> tuple[int, list[set[int]], list[bool]]:
    users = [{u for u, _ in b} for b in buckets]
    total = set().union(*users)
    hidden = hidden_groups(
        len(total), [len(u) for u in users], lambda idx: len(set().union(*(users[i] for i in idx)))
    )
    return len(total), users, hidden


@settings(max_examples=500, deadline=None)
@given(partitions)
def test_no_hidden_bucket_can_be_derived_from_one_response(buckets: list[list[tuple[int, str]]]) -> None:
    total_users, users, hidden = hide(buckets)
    for bucket_users, is_hidden in zip(users, hidden, strict=True):
        if 0 < len(bucket_users) < K:
            assert is_hidden  # a bucket of 1 to k-1 users is never shown
    if 0 < total_users < K:
        assert all(h for u, h in zip(users, hidden, strict=True) if u)  # nor anything of a small total
        return
    # Shown total: what the visible buckets leave is the hidden ones' sum...
    total = sum((counts(b) for b in buckets), np.zeros(len(KINDS), dtype=int))
    derived = total - sum(
        (counts(b) for b, h in zip(buckets, hidden, strict=True) if not h), np.zeros(len(KINDS), dtype=int)
    )
    hidden_users = set().union(*(u for u, h in zip(users, hidden, strict=True) if h))
    # ...which covers no users or at least k of them...
    assert len(hidden_users) == 0 or len(hidden_users) >= K
    # ...and is never one hidden bucket's own numbers.
    for bucket, bucket_users, is_hidden in zip(buckets, users, hidden, strict=True):
        if is_hidden and bucket_users:
            assert not np.array_equal(derived, counts(bucket))


@settings(max_examples=200, deadline=None)
@given(partitions)
def test_only_as_many_are_hidden_as_needed(buckets: list[list[tuple[int, str]]]) -> None:
    """Buckets of k users or more stay visible while the hidden ones together have k."""
    total_users, users, hidden = hide(buckets)
    if 0 < total_users < K:
        return
    small = [i for i, u in enumerate(users) if 0 < len(u) < K]
    extra = [i for i, h in enumerate(hidden) if h and i not in small]
    if extra:  # each extra one was needed: without the last, the hidden held fewer than k
        last = max(extra, key=lambda i: (len(users[i]), i))
        rest = set().union(*(users[i] for i, h in enumerate(hidden) if h and i != last))
        assert 0 < len(rest) < K


def test_a_lone_small_bucket_takes_the_smallest_visible_one_with_it() -> None:
    a, b, c = set(range(10)), set(range(10, 16)), {16, 17}
    users = [a, b, c]
    hidden = hidden_groups(18, [10, 6, 2], lambda idx: len(set().union(*(users[i] for i in idx))))
    assert hidden == [False, True, True]


def test_the_hidden_groups_together_must_hold_k_users() -> None:
    """Two hidden hours of the same three users: 3 < k together, so a third is hidden."""
    users = [{1, 2, 3}, {1, 2, 3}, set(range(1, 9)), set(range(20, 40))]
    hidden = hidden_groups(27, [3, 3, 8, 20], lambda idx: len(set().union(*(users[i] for i in idx))))
    assert hidden == [True, True, True, False]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**40), max_size=50), min_size=1, max_size=6), st.data())
def test_sets_round_trip_and_count(lists: list[list[int]], data: st.DataObject) -> None:
    sets = [np.array(sorted(set(values)), dtype=np.int64) for values in lists]
    for ids in sets:
        flags = np.array(data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids))), dtype=bool)
        got_ids, got_flags = insight_sets.decode(insight_sets.encode(ids, flags))
        assert got_ids.tolist() == ids.tolist() and got_flags.tolist() == flags.tolist()
    counter = DistinctCounter()  # one for every count: its marks grow and are cleared
    for spread in (2**41, 1000, 5000):  # a wide range (np.unique), narrow ones (the bitmap)
        near = [np.unique(s % spread) for s in sets]
        everyone = set().union(*(set(s.tolist()) for s in near))
        assert counter.count(near) == len(everyone)
        assert counter.count(near[:1]) == len(near[0])
        assert counter.count(near) == len(everyone)  # the marks are cleared between counts
