"""Box queries on the nearby index equal a scan of every point: edges included, boxes
across the antimeridian, near the poles, after removals, moves and compaction."""

from __future__ import annotations

from pathlib import Path

import h3.api.basic_int as h3
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.geo.h3box import cluster_resolution, parent_cells
from lbs.geo.h3index import Box, NearbyIndex
from tests.lbs.geo.strategies import N_USED_CATEGORIES, RESOLUTIONS, build_index, category_filters, centres
from tests.oracle import destination

Point = tuple[int, float, float, int]  # id, lat, lng, category


def inside(box: Box, lat: float, lng: float) -> bool:
    if not box.min_lat <= lat <= box.max_lat:
        return False
    if box.min_lng <= box.max_lng:
        return box.min_lng <= lng <= box.max_lng
    return lng >= box.min_lng or lng <= box.max_lng


def expected(points: list[Point], box: Box, wanted: list[int] | None) -> list[int]:
    return sorted(i for i, lat, lng, c in points if inside(box, lat, lng) and (wanted is None or c in wanted))


def found(index: NearbyIndex, box: Box, wanted: list[int] | None) -> list[int]:
    hits = index.in_box(box, wanted)
    assert len(hits.ids) == len(hits.lats) == len(hits.lngs) == len(hits.categories)
    return hits.ids.tolist()


def _wrap(lng: float) -> float:
    return (lng + 180.0) % 360.0 - 180.0


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Point], Box, tuple[int, ...]]:
    lat, lng = draw(centres)
    half_lat = draw(st.floats(0.0001, 2.0))
    half_lng = draw(st.floats(0.0001, 4.0))
    box = Box(
        min_lng=_wrap(lng - half_lng),
        min_lat=max(-90.0, lat - half_lat),
        max_lng=_wrap(lng + half_lng),
        max_lat=min(90.0, lat + half_lat),
    )
    spots = draw(
        st.lists(
            st.tuples(
                st.floats(0.0, 360.0), st.floats(0.0, 400_000.0), st.integers(0, N_USED_CATEGORIES - 1)
            ),
            max_size=80,
        )
    )
    points = [(k + 1, *destination(lat, lng, b, d), c) for k, (b, d, c) in enumerate(spots)]
    # Some exactly on the edges and corners.
    edges = draw(
        st.lists(
            st.tuples(
                st.sampled_from([box.min_lat, box.max_lat, lat]),
                st.sampled_from([box.min_lng, box.max_lng, lng]),
                st.integers(0, N_USED_CATEGORIES - 1),
            ),
            max_size=12,
        )
    )
    points += [(len(points) + k + 1, a, b, c) for k, (a, b, c) in enumerate(edges)]
    return points, box, draw(st.sampled_from(RESOLUTIONS))


def index_of(points: list[Point], resolutions: tuple[int, ...]) -> NearbyIndex:
    return build_index(
        [p[0] for p in points],
        [p[1] for p in points],
        [p[2] for p in points],
        [p[3] for p in points],
        resolutions,
    )


@settings(max_examples=300, deadline=None)
@given(worlds(), category_filters)
def test_a_box_holds_exactly_the_points_inside_it(world: tuple, wanted: list[int] | None) -> None:
    points, box, resolutions = world
    assert found(index_of(points, resolutions), box, wanted) == expected(points, box, wanted)


@settings(max_examples=150, deadline=None)
@given(worlds(), st.data())
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


@given(st.floats(-90, 90), st.floats(-180, 180), st.integers(0, 15))
def test_parents_by_bits_are_h3s_parents(lat: float, lng: float, resolution: int) -> None:
    cell = h3.latlng_to_cell(lat, lng, 15)
    ancestors = [h3.cell_to_parent(cell, r) for r in range(resolution, 16)]

    assert parent_cells(np.array(ancestors, dtype=np.int64), resolution).tolist() == [ancestors[0]] * len(
        ancestors
    )


def test_the_zoom_picks_cells_about_fifty_pixels_wide() -> None:
    assert [cluster_resolution(z, 11) for z in (0, 5, 10, 14, 17, 20)] == [0, 2, 5, 8, 10, 11]
    assert cluster_resolution(17, 9) == 9  # never finer than the index


def test_the_documented_zoom_table_is_the_one_used() -> None:
    lines = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text().splitlines()
    zooms = next(line for line in lines if line.startswith("| zoom | 0-"))
    resolutions = next(line for line in lines if line.startswith("| H3 resolution |"))
    for span, resolution in zip(zooms.split("|")[2:-1], resolutions.split("|")[2:-1], strict=True):
        first, _, last = span.strip().partition("-")
        for zoom in range(int(first), int(last or first) + 1):
            assert cluster_resolution(zoom, 11) == int(resolution), zoom
