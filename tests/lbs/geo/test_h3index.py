"""NearbyIndex answers exactly what a brute-force haversine search answers, page by page."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.geo.h3index import Cursor
from tests.lbs.geo.strategies import Scenario, build_index, ids_and_distances, scenarios
from tests.oracle import EARTH_RADIUS_M, Points, assert_nearby_exact


@settings(max_examples=250)
@given(scenarios())
def test_query_returns_exactly_the_points_within_the_radius(s: Scenario) -> None:
    found = s.index().query(s.lat, s.lon, s.radius_m, limit=len(s.ids) + 1, categories=s.category_filter)

    ids, distances = ids_and_distances(found.hits)
    assert_nearby_exact(s.points(), s.lat, s.lon, s.radius_m, ids, found.total, distances)


@settings(max_examples=150)
@given(scenarios())
def test_within_is_every_hit_of_the_query_as_arrays(s: Scenario) -> None:
    index = s.index()
    everything = index.query(s.lat, s.lon, s.radius_m, limit=len(s.ids) + 1)

    ids, chord2 = index.within(s.lat, s.lon, s.radius_m)

    assert ids.tolist() == [h.id for h in everything.hits]
    assert chord2.tolist() == [h.chord2 for h in everything.hits]
    assert len(ids) == everything.total


@settings(max_examples=100)
@given(scenarios(), st.integers(1, 30))
def test_first_page_is_the_nearest_limit(s: Scenario, limit: int) -> None:
    index = s.index()
    everything = index.query(s.lat, s.lon, s.radius_m, limit=len(s.ids) + 1, categories=s.category_filter)

    page = index.query(s.lat, s.lon, s.radius_m, limit=limit, categories=s.category_filter)

    assert page.hits == everything.hits[:limit]
    assert page.total == everything.total


@settings(max_examples=150)
@given(scenarios(), st.lists(st.integers(1, 12), min_size=1, max_size=8))
def test_cursor_walk_yields_every_result_exactly_once_in_order(s: Scenario, page_sizes: list[int]) -> None:
    index = s.index()
    everything = index.query(s.lat, s.lon, s.radius_m, limit=len(s.ids) + 1, categories=s.category_filter)

    walked = []
    after: Cursor | None = None
    for page_number in range(len(s.ids) + 2):
        size = page_sizes[page_number % len(page_sizes)]
        page = index.query(s.lat, s.lon, s.radius_m, limit=size, after=after, categories=s.category_filter)
        assert page.total == everything.total, "the total does not depend on the page"
        walked.extend(page.hits)
        if len(page.hits) < size:
            break
        after = Cursor(page.hits[-1].chord2, page.hits[-1].id)
    else:
        raise AssertionError("the walk did not end")

    assert walked == everything.hits
    ids, distances = ids_and_distances(walked)
    assert_nearby_exact(s.points(), s.lat, s.lon, s.radius_m, ids, everything.total, distances)


def test_empty_index_finds_nothing() -> None:
    found = build_index([], [], [], []).query(60.0, 25.0, 50_000.0, limit=10)

    assert found.total == 0
    assert found.hits == []


def test_every_longitude_at_the_north_pole_is_the_same_place() -> None:
    lons = [-180.0, -90.0, 0.0, 45.0, 179.999, 180.0]
    index = build_index(range(1, 7), [90.0] * 6, lons, [0] * 6)

    found = index.query(90.0, 123.0, 1.0, limit=10)

    # Their unit vectors differ in the 17th digit, so their order is by that, not by id:
    # a tie within TIE_M, as the oracle allows.
    assert sorted(h.id for h in found.hits) == [1, 2, 3, 4, 5, 6]
    assert all(h.distance_m < 1e-6 for h in found.hits)
    assert not build_index(range(1, 7), [90.0] * 6, lons, [0] * 6).query(-90.0, 0.0, 50_000.0, 10).hits


def test_query_across_the_antimeridian_finds_both_sides() -> None:
    # 0.01 degrees of longitude at the equator is about 1113 m.
    lats, lons = [0.0, 0.0, 0.0, 0.0], [179.995, -179.995, 179.98, -179.98]
    index = build_index([1, 2, 3, 4], lats, lons, [0] * 4)

    found = index.query(0.0, 180.0, 1000.0, limit=10)

    assert sorted(h.id for h in found.hits) == [1, 2]
    points = Points.of([1, 2, 3, 4], lats, lons)
    assert_nearby_exact(points, 0.0, 180.0, 1000.0, [h.id for h in found.hits], found.total)


def test_ties_are_ordered_by_id_across_page_boundaries() -> None:
    ids = [50, 7, 31, 2, 19, 44, 3]
    index = build_index(ids, [10.0] * 7, [20.0] * 7, [0] * 7)

    first = index.query(10.0, 20.001, 500.0, limit=3)
    rest = index.query(10.0, 20.001, 500.0, limit=10, after=Cursor(first.hits[-1].chord2, first.hits[-1].id))

    assert [h.id for h in first.hits + rest.hits] == sorted(ids)
    assert first.total == rest.total == 7


def test_hit_distance_is_great_circle_metres() -> None:
    found = build_index([1], [0.0], [0.25], [0]).query(0.0, 0.0, 50_000.0, limit=1)

    # A quarter degree of the equator on the sphere of radius R.
    assert abs(found.hits[0].distance_m - EARTH_RADIUS_M * math.radians(0.25)) < 1e-6
