"""Upserts, removals and compaction keep NearbyIndex's answers exact."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lbs.geo.h3index import Cursor, NearbyIndex
from tests.lbs.geo.strategies import (
    N_USED_CATEGORIES,
    RESOLUTIONS,
    build_index,
    category_filters,
    centres,
    ids_and_distances,
)
from tests.oracle import Points, assert_nearby_exact, destination

REGION_M = 20_000.0
bearings = st.floats(0.0, 360.0)
shares = st.floats(0.0, 1.0)
cats = st.integers(0, N_USED_CATEGORIES - 1)


class IndexUnderWrites(RuleBasedStateMachine):
    """A model dict beside the index; every query must match the oracle over the model."""

    index: NearbyIndex

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[int, tuple[float, float, int]] = {}
        self.next_id = 1

    def _place(self, bearing: float, share: float) -> tuple[float, float]:
        return destination(self.lat, self.lon, bearing, share * REGION_M)

    @initialize(
        centre=centres,
        base=st.lists(st.tuples(bearings, shares, cats), max_size=40),
        resolutions=st.sampled_from(RESOLUTIONS),
    )
    def build(
        self, centre: tuple[float, float], base: list[tuple[float, float, int]], resolutions: tuple[int, ...]
    ):
        self.lat, self.lon = centre
        for bearing, share, category in base:
            self.model[self.next_id] = (*self._place(bearing, share), category)
            self.next_id += 1
        ids = list(self.model)
        self.index = build_index(
            ids,
            [self.model[i][0] for i in ids],
            [self.model[i][1] for i in ids],
            [self.model[i][2] for i in ids],
            resolutions,
        )

    @rule(bearing=bearings, share=shares, category=cats)
    def add(self, bearing: float, share: float, category: int) -> None:
        lat, lon = self._place(bearing, share)
        self.index.upsert(self.next_id, lat, lon, category)
        self.model[self.next_id] = (lat, lon, category)
        self.next_id += 1

    @precondition(lambda self: self.model)
    @rule(pick=st.randoms(use_true_random=False), bearing=bearings, share=shares, category=cats)
    def move(self, pick: random.Random, bearing: float, share: float, category: int) -> None:
        merchant_id = pick.choice(sorted(self.model))
        lat, lon = self._place(bearing, share)
        self.index.upsert(merchant_id, lat, lon, category)
        self.model[merchant_id] = (lat, lon, category)

    @precondition(lambda self: len(self.model) >= 2)
    @rule(pick=st.randoms(use_true_random=False))
    def move_onto_another(self, pick: random.Random) -> None:
        mover, target = pick.sample(sorted(self.model), 2)
        lat, lon, _ = self.model[target]
        category = self.model[mover][2]
        self.index.upsert(mover, lat, lon, category)
        self.model[mover] = (lat, lon, category)

    @precondition(lambda self: self.model)
    @rule(pick=st.randoms(use_true_random=False))
    def remove(self, pick: random.Random) -> None:
        merchant_id = pick.choice(sorted(self.model))
        self.index.remove(merchant_id)
        del self.model[merchant_id]

    @rule(offset=st.integers(0, 1000))
    def remove_unknown(self, offset: int) -> None:
        self.index.remove(self.next_id + offset)

    @rule()
    def compact(self) -> None:
        self.index.compact()

    @rule(
        bearing=bearings,
        share=st.floats(0.0, 1.5),
        radius_m=st.floats(1.0, 50_000.0),
        only=category_filters,
        page_size=st.integers(1, 15),
    )
    def query(
        self, bearing: float, share: float, radius_m: float, only: list[int] | None, page_size: int
    ) -> None:
        lat, lon = self._place(bearing, share)
        everything = self.index.query(lat, lon, radius_m, limit=len(self.model) + 1, categories=only)
        ids = list(self.model)
        points = Points.of(
            ids,
            [self.model[i][0] for i in ids],
            [self.model[i][1] for i in ids],
            [only is None or self.model[i][2] in only for i in ids],
        )
        got_ids, distances = ids_and_distances(everything.hits)
        assert_nearby_exact(points, lat, lon, radius_m, got_ids, everything.total, distances)
        if only is None:  # within(): the same hits as arrays, after removals and overlay
            within_ids, within_chord2 = self.index.within(lat, lon, radius_m)
            assert within_ids.tolist() == got_ids
            assert within_chord2.tolist() == [h.chord2 for h in everything.hits]

        walked, after = [], None
        while True:
            page = self.index.query(lat, lon, radius_m, limit=page_size, after=after, categories=only)
            walked.extend(page.hits)
            if len(page.hits) < page_size:
                break
            after = Cursor(page.hits[-1].chord2, page.hits[-1].id)
        assert walked == everything.hits

    @invariant()
    def size_counts_live_merchants(self) -> None:
        if hasattr(self, "index"):
            assert self.index.size == len(self.model)


IndexUnderWrites.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
TestIndexUnderWrites = IndexUnderWrites.TestCase


def test_overlay_larger_than_the_compaction_threshold_stays_exact() -> None:
    rng = random.Random(4)
    index = build_index([1, 2], [60.0, 60.001], [25.0, 25.001], [0, 1])
    model = {1: (60.0, 25.0), 2: (60.001, 25.001)}
    # More upserts than the overlay holds before it folds itself into a new snapshot.
    for merchant_id in range(3, 5200):
        model[merchant_id] = destination(60.0, 25.0, rng.uniform(0, 360), rng.uniform(0, 3000))
        index.upsert(merchant_id, *model[merchant_id], merchant_id % 2)
    for merchant_id in range(3, 5200, 7):
        index.remove(merchant_id)
        del model[merchant_id]

    found = index.query(60.0, 25.0, 2000.0, limit=len(model))

    ids = list(model)
    points = Points.of(ids, [model[i][0] for i in ids], [model[i][1] for i in ids])
    got_ids, distances = ids_and_distances(found.hits)
    assert_nearby_exact(points, 60.0, 25.0, 2000.0, got_ids, found.total, distances)
    assert index.size == len(model)


def test_one_position_is_one_distance_in_snapshot_and_overlay_alike() -> None:
    rng = random.Random(9)
    for _ in range(200):
        lat, lon = rng.uniform(-90, 90), rng.uniform(-180, 180)
        index = build_index([1, 2, 3], [lat, lat, 0.0], [lon, lon, 0.0], [0, 0, 0])
        index.compact()
        index.upsert(3, lat, lon, 0)  # onto the other two, through the overlay

        found = index.query(lat, lon, 1.0, limit=10)

        assert [h.id for h in found.hits] == [1, 2, 3], (lat, lon, found.hits)
        assert len({h.chord2 for h in found.hits}) == 1, (lat, lon, found.hits)
