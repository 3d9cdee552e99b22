"""The one great-circle distance agrees with haversine and with known lengths on the sphere."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.geo.distance import chord2_to, chord2_to_m, great_circle_m, latlng_to_xyz, m_to_chord2, point_to_xyz
from tests.lbs.geo.strategies import centres
from tests.oracle import EARTH_RADIUS_M, TIE_M, destination, haversine_m


@settings(max_examples=300)
@given(centres, st.floats(0.0, 360.0), st.floats(0.0, 60_000.0))
def test_great_circle_m_matches_haversine_at_query_scales(
    centre: tuple[float, float], bearing: float, distance_m: float
) -> None:
    lat, lon = centre
    other = destination(lat, lon, bearing, distance_m)

    expected = float(haversine_m(lat, lon, [other[0]], [other[1]])[0])
    assert great_circle_m(lat, lon, *other) == pytest.approx(expected, abs=TIE_M)
    chord2 = chord2_to(latlng_to_xyz([other[0]], [other[1]]), point_to_xyz(lat, lon))
    assert float(chord2_to_m(chord2)[0]) == pytest.approx(expected, abs=TIE_M)


@settings(max_examples=200)
@given(st.floats(0.0, 2e7))
def test_metres_to_chord_and_back(distance_m: float) -> None:
    assert float(chord2_to_m(m_to_chord2(distance_m))) == pytest.approx(distance_m, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(
    ("a", "b", "expected_m"),
    [
        ((0.0, 0.0), (0.0, 1.0), EARTH_RADIUS_M * math.pi / 180),
        ((0.0, 179.5), (0.0, -179.5), EARTH_RADIUS_M * math.pi / 180),
        ((90.0, 0.0), (-90.0, 0.0), EARTH_RADIUS_M * math.pi),
        ((90.0, 10.0), (90.0, -170.0), 0.0),
        ((0.0, 0.0), (0.0, 90.0), EARTH_RADIUS_M * math.pi / 2),
    ],
    ids=["one-degree", "across-the-antimeridian", "pole-to-pole", "north-pole-twice", "quarter-equator"],
)
def test_known_lengths(a: tuple[float, float], b: tuple[float, float], expected_m: float) -> None:
    assert great_circle_m(*a, *b) == pytest.approx(expected_m, abs=1e-3)


def test_distances_are_reproduced_bit_for_bit_whatever_the_batch() -> None:
    rng = np.random.default_rng(3)
    lats, lons = rng.uniform(-90, 90, 1000), rng.uniform(-180, 180, 1000)
    point = point_to_xyz(12.5, -45.0)

    whole = chord2_to(latlng_to_xyz(lats, lons), point)
    one_by_one = np.concatenate(
        [chord2_to(latlng_to_xyz(lats[i : i + 1], lons[i : i + 1]), point) for i in range(1000)]
    )

    # Cursors hold a chord; a page must recompute exactly the same value for the same merchant.
    assert np.array_equal(whole, one_by_one)
