"""Clusters from the index's per-cell totals equal a count of every point, and equal the
per-merchant path: per cell at each resolution, with category filters and marked ids,
edges included, across the antimeridian and near the poles, after removals, moves and
compaction; and the parents and resolutions they use are H3's."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import h3.api.basic_int as h3
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.geo.distance import latlng_to_xyz
from lbs.geo.h3box import Box
from lbs.geo.h3clusters import Clusters, cluster_resolution, clusters, parent_cells
from lbs.geo.h3index import NearbyIndex
from tests.lbs.geo.strategies import (
    N_USED_CATEGORIES,
    Point,
    box_worlds,
    build_index,
    category_filters,
    index_of,
    inside,
)

Expected = tuple[list[int], list[int], list[int], np.ndarray]  # cells, counts, marked, mean unit vectors


def expected(
    points: Iterable[Point],
    box: Box,
    resolution: int,
    finest: int,
    wanted: list[int] | None,
    marked: set[int],
) -> Expected:
    """Straight from h3: each point inside counted in the ancestor of its finest cell."""
    members: dict[int, list[Point]] = {}
    for p in points:
        _, lat, lng, category = p
        if inside(box, lat, lng) and (wanted is None or category in wanted):
            cell = h3.cell_to_parent(h3.latlng_to_cell(lat, lng, finest), resolution)
            members.setdefault(cell, []).append(p)
    cells = sorted(members, key=lambda c: (-len(members[c]), c))
    means = [latlng_to_xyz([p[1] for p in members[c]], [p[2] for p in members[c]]).sum(axis=0) for c in cells]
    return (
        cells,
        [len(members[c]) for c in cells],
        [sum(p[0] in marked for p in members[c]) for c in cells],
        np.array(means).reshape(-1, 3),
    )


def assert_clusters(found: Clusters, want: Expected) -> None:
    cells, counts, marked, sums = want
    assert found.cells.tolist() == cells
    assert found.counts.tolist() == counts
    assert found.marked.tolist() == marked
    if cells:  # the same mean direction (a sum's length does not matter), to rounding
        mean = sums / np.linalg.norm(sums, axis=1)[:, None]
        assert np.abs(latlng_to_xyz(found.lats, found.lngs) - mean).max() < 1e-9


# Ids as a database gives them (dense: the index looks rows up in a table) and sparse.
id_scales = st.sampled_from([1, 2**40])


def scaled(points: list[Point], scale: int) -> list[Point]:
    return [(i * scale, lat, lng, c) for i, lat, lng, c in points]


def marked_ids(ids: Sequence[int]) -> np.ndarray:
    return np.unique(np.array(ids, dtype=np.int64))


def both_paths(
    index: NearbyIndex, box: Box, resolution: int, wanted: list[int] | None, marked: np.ndarray
) -> tuple[Clusters, Clusters]:
    """From the totals, and merchant by merchant (what per-merchant filters use)."""
    from_totals = index.clusters(box, resolution, wanted, marked)
    one_by_one = clusters(index.in_box(box, wanted, by_id=False), resolution, marked)
    return from_totals, one_by_one


@settings(max_examples=300, deadline=None)
@given(box_worlds(), category_filters, st.data())
def test_clusters_count_exactly_the_points_inside_per_cell(
    world: tuple, wanted: list[int] | None, data: st.DataObject
) -> None:
    points, box, resolutions = world
    scale = data.draw(id_scales)
    points = scaled(points, scale)
    resolution = data.draw(st.integers(0, resolutions[-1]))
    marked = {i * scale for i in data.draw(st.lists(st.integers(1, len(points) + 5), max_size=30))}
    index = index_of(points, resolutions)

    from_totals, one_by_one = both_paths(index, box, resolution, wanted, marked_ids(sorted(marked)))

    want = expected(points, box, resolution, resolutions[-1], wanted, marked)
    assert_clusters(from_totals, want)
    assert_clusters(one_by_one, want)


@settings(max_examples=150, deadline=None)
@given(box_worlds(), category_filters, st.data())
def test_clusters_stay_exact_under_removals_moves_and_compaction(
    world: tuple, wanted: list[int] | None, data: st.DataObject
) -> None:
    points, box, resolutions = world
    scale = data.draw(id_scales)
    points = scaled(points, scale)
    finest = resolutions[-1]
    index = index_of(points, resolutions)
    asked = data.draw(st.lists(st.integers(0, finest), min_size=1, max_size=3))
    for resolution in asked:  # the totals exist before the writes, so the writes must keep them
        index.clusters(box, resolution)
        index.clusters(box, resolution, [0])
    model = {p[0]: p for p in points}
    ids = sorted(model)
    for merchant_id in data.draw(st.lists(st.sampled_from(ids), max_size=20)) if ids else []:
        index.remove(merchant_id)
        model.pop(merchant_id, None)
    moves = data.draw(
        st.lists(
            st.tuples(
                st.integers(1, len(points) + 20),
                st.floats(box.min_lat, box.max_lat) | st.floats(-90, 90),
                st.floats(-180, 180),
            ),
            max_size=10,
        )
    )
    for k, lat, lng in moves:
        merchant_id = k * scale
        index.upsert(merchant_id, lat, lng, k % N_USED_CATEGORIES)
        model[merchant_id] = (merchant_id, lat, lng, k % N_USED_CATEGORIES)
    marked = {i * scale for i in data.draw(st.lists(st.integers(1, len(points) + 20), max_size=30))}

    for resolution in asked:
        want = expected(model.values(), box, resolution, finest, wanted, marked)
        for found in both_paths(index, box, resolution, wanted, marked_ids(sorted(marked))):
            assert_clusters(found, want)
    index.compact()
    for resolution in asked:
        want = expected(model.values(), box, resolution, finest, wanted, marked)
        assert_clusters(index.clusters(box, resolution, wanted, marked_ids(sorted(marked))), want)


def test_a_crowded_city_is_counted_from_few_totals_that_follow_removals() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    lats, lngs = 60.17 + rng.normal(0, 0.02, n), 24.94 + rng.normal(0, 0.04, n)
    cats = rng.integers(0, N_USED_CATEGORIES, n)
    index = build_index(range(1, n + 1), lats, lngs, cats)
    city = Box(24.0, 59.0, 26.0, 61.0)

    for by_category, most in ((False, n / 50), (True, n / 10)):
        totals = index._totals_at(5, by_category)
        assert totals is not None and len(totals.cells) < most and int(totals.counts.sum()) == n
    assert index._totals_at(11, False) is None  # about one merchant per cell: rows are read instead
    for merchant_id in range(1, 1001):
        index.remove(merchant_id)

    rest = [(i + 1, lats[i], lngs[i], int(cats[i])) for i in range(1000, n)]
    for wanted in (None, [1, 2]):
        found = index.clusters(city, 5, wanted, np.arange(1, 2001, dtype=np.int64))
        assert_clusters(found, expected(rest, city, 5, 11, wanted, set(range(1001, 2001))))
    assert int(index.clusters(city, 5).counts.sum()) == n - 1000


def test_no_points_no_clusters() -> None:
    found = build_index([], [], [], []).clusters(Box(-180, -90, 180, 90), 3, None, np.arange(5))
    assert found.cells.tolist() == found.counts.tolist() == found.marked.tolist() == []


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
