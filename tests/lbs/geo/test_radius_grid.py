"""RadiusGrid finds what NearbyIndex.within finds, bit for bit: the same ids, the same chords."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from lbs.geo.radius_grid import RadiusGrid
from tests.lbs.geo.strategies import Scenario, build_index, scenarios


@settings(max_examples=300)
@given(scenarios())
def test_the_grid_finds_exactly_what_the_index_finds(s: Scenario) -> None:
    want_ids, want_c2 = build_index(s.ids, s.lats, s.lons, s.categories).within(s.lat, s.lon, s.radius_m)

    ids, c2 = RadiusGrid(s.ids, s.lats, s.lons, s.radius_m).within(s.lat, s.lon)

    order = np.lexsort((ids, c2))
    assert ids[order].tolist() == want_ids.tolist()
    assert c2[order].tolist() == want_c2.tolist()


def test_a_dense_city_answers_as_the_index_does() -> None:
    """Thousands of points within the radius, many at shared positions (ties by id)."""
    rng = np.random.default_rng(3)
    lats = np.round(60.17 + rng.normal(0, 0.01, 20_000), 4)  # rounding makes shared positions
    lons = np.round(24.94 + rng.normal(0, 0.02, 20_000), 4)
    ids = rng.permutation(10**6)[:20_000]
    index = build_index(ids.tolist(), lats.tolist(), lons.tolist(), [0] * len(ids))
    grid = RadiusGrid(ids, lats, lons, 2000.0)

    ties = 0
    for k in rng.choice(len(ids), 20, replace=False).tolist():
        want_ids, want_c2 = index.within(float(lats[k]), float(lons[k]), 2000.0)
        got_ids, got_c2 = grid.within(float(lats[k]), float(lons[k]))
        order = np.lexsort((got_ids, got_c2))
        assert len(want_ids) > 200
        np.testing.assert_array_equal(got_ids[order], want_ids)
        np.testing.assert_array_equal(got_c2[order], want_c2)
        ties += int((np.diff(want_c2) == 0).sum())
    assert ties > 0
