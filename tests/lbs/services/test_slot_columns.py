"""The deal book's array lookups answer as the dicts of lists they replace, through loads,
rows added one by one, and the rebuilds those trigger."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.services import slot_columns
from lbs.services.slot_columns import SlotsByKey, Titles, code_of


@settings(max_examples=60, deadline=None)
@given(
    loaded=st.lists(st.integers(0, 30), max_size=40),
    added=st.lists(st.integers(0, 40), max_size=40),
    asked=st.lists(st.integers(-2, 45), max_size=30),
    recent_cap=st.sampled_from([0, 3, 1000]),
)
def test_slots_by_key_answer_as_a_dict_of_lists(
    loaded: list[int], added: list[int], asked: list[int], recent_cap: int
) -> None:
    slot_columns._RECENT = recent_cap  # small caps make the adds rebuild the arrays
    try:
        keys = np.array(loaded + added, dtype=np.int64)
        expected: dict[int, list[int]] = {}
        lookup = SlotsByKey()
        for slot, key in enumerate(loaded):
            expected.setdefault(key, []).append(slot)
        lookup.build(keys[: len(loaded)])
        for slot, key in enumerate(added, start=len(loaded)):
            expected.setdefault(key, []).append(slot)
            lookup.add(key, slot)
            lookup.settle(keys[: slot + 1])

        for key in asked:
            assert lookup.of(key) == expected.get(key, [])
            assert (key in lookup) == (key in expected)
        positions, slots = lookup.of_many(asked)
        pairs = [(i, s) for i, k in enumerate(asked) for s in expected.get(k, [])]
        assert list(zip(positions.tolist(), slots.tolist(), strict=True)) == pairs
    finally:
        slot_columns._RECENT = 1000


@settings(max_examples=60, deadline=None)
@given(
    loaded=st.lists(st.text(max_size=12), max_size=30),
    changes=st.lists(st.tuples(st.integers(0, 40), st.text(max_size=12)), max_size=30),
)
def test_titles_read_back_what_was_set_across_folds(
    loaded: list[str], changes: list[tuple[int, str]]
) -> None:
    titles = Titles()
    expected = dict(enumerate(loaded))
    for slot, title in expected.items():
        titles[slot] = title
    titles.fold(len(loaded))
    n = len(loaded)
    for k, (slot, title) in enumerate(changes):
        titles[slot] = expected[slot] = title
        n = max(n, slot + 1)
        if k % 7 == 6:
            titles.fold(n)
    assert [titles[s] for s in range(n + 2)] == [expected.get(s, "") for s in range(n + 2)]


def test_codes_are_positions_of_the_first_sighting() -> None:
    kinds: list[str] = []
    assert [code_of(kinds, k) for k in ("percent_off", "bogo", "percent_off")] == [0, 1, 0]
    assert kinds == ["percent_off", "bogo"]
