"""Box queries on the nearby index equal a scan of every point: edges included, boxes
across the antimeridian, near the poles, after removals, moves and compaction."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.geo.h3index import Box, NearbyIndex
from tests.lbs.geo.strategies import (
    N_USED_CATEGORIES,
    Point,
    box_worlds,
    build_index,
    category_filters,
    index_of,
    inside,
)


def expected(points: list[Point], box: Box, wanted: list[int] | None) -> list[int]:
    return sorted(i for i, lat, lng, c in points if inside(box, lat, lng) and (wanted is None or c in wanted))


def found(index: NearbyIndex, box: Box, wanted: list[int] | None) -> list[int]:
    hits = index.in_box(box, wanted)
    assert len(hits.ids) == len(hits.lats) == len(hits.lngs) == len(hits.categories)
    return hits.ids.tolist()


@settings(max_examples=300, deadline=None)
@given(box_worlds(), category_filters)
def test_a_box_holds_exactly_the_points_inside_it(world: tuple, wanted: list[int] | None) -> None:
    points, box, resolutions = world
    assert found(index_of(points, resolutions), box, wanted) == expected(points, box, wanted)


@settings(max_examples=150, deadline=None)
@given(box_worlds(), st.data())
def test_boxes_stay_exact_under_removals_moves_and_compaction(world: tuple, data: st.DataObject) -> None:
    points, box, resolutions = world
    index = index_of(points, resolutions)
    model = {p[0]: p for p in points}
    ids = sorted(model)
    for merchant_id in data.draw(st.lists(st.sampled_from(ids), max_size=10)) if ids else []:
        index.remove(merchant_id)
        model.pop(merchant_id, None)
    moves = data.draw(
        st.lists(
            st.tuples(st.integers(1, len(points) + 20), st.floats(-90, 90), st.floats(-180, 180)), max_size=10
        )
    )
    for merchant_id, lat, lng in moves:
        index.upsert(merchant_id, lat, lng, merchant_id % N_USED_CATEGORIES)
        model[merchant_id] = (merchant_id, lat, lng, merchant_id % N_USED_CATEGORIES)

    assert found(index, box, None) == expected(list(model.values()), box, None)
    index.compact()
    assert found(index, box, None) == expected(list(model.values()), box, None)


def test_a_box_across_the_antimeridian_takes_both_sides() -> None:
    points = [(1, 0.0, 179.9), (2, 0.0, -179.9), (3, 0.0, 0.0), (4, 0.0, 180.0), (5, 0.0, -180.0)]
    index = build_index([p[0] for p in points], [p[1] for p in points], [p[2] for p in points], [0] * 5)

    assert found(index, Box(179.0, -1.0, -179.0, 1.0), None) == [1, 2, 4, 5]
    assert found(index, Box(-179.0, -1.0, 179.0, 1.0), None) == [3]
