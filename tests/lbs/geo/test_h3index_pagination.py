"""A cursor walk over a radius holding 100,000 merchants yields each exactly once, in order."""

from __future__ import annotations

import numpy as np

from lbs.geo.h3index import Cursor
from tests.lbs.geo.strategies import build_index
from tests.oracle import EARTH_RADIUS_M, Points, assert_nearby_exact, expected_order

CENTRE = (60.17, 24.94)
RADIUS_M = 10_000.0


def _city(rng: np.random.Generator) -> Points:
    """100,000 merchants inside the radius (2,000 of them on one spot), 5,000 just outside."""
    n_inside, n_spot, n_outside = 98_000, 2_000, 5_000
    distance = np.concatenate(
        [
            RADIUS_M * 0.98 * np.sqrt(rng.uniform(0, 1, n_inside)),
            np.full(n_spot, 1234.5),
            rng.uniform(RADIUS_M + 1.0, RADIUS_M * 1.3, n_outside),
        ]
    )
    bearing = np.concatenate(
        [rng.uniform(0, 2 * np.pi, n_inside), np.full(n_spot, 1.0), rng.uniform(0, 2 * np.pi, n_outside)]
    )
    # Destination on the sphere, vectorised.
    phi1, lam1 = np.radians(CENTRE[0]), np.radians(CENTRE[1])
    delta = distance / EARTH_RADIUS_M
    phi2 = np.arcsin(np.sin(phi1) * np.cos(delta) + np.cos(phi1) * np.sin(delta) * np.cos(bearing))
    lam2 = lam1 + np.arctan2(
        np.sin(bearing) * np.sin(delta) * np.cos(phi1), np.cos(delta) - np.sin(phi1) * np.sin(phi2)
    )
    ids = rng.permutation(np.arange(1, len(distance) + 1) * 3)
    return Points.of(ids, np.degrees(phi2), np.degrees(lam2))


def test_walk_over_100k_results_yields_each_once_in_distance_order() -> None:
    rng = np.random.default_rng(20261124)
    points = _city(rng)
    index = build_index(points.ids, points.lats, points.lons, rng.integers(0, 17, len(points.ids)))
    expected = expected_order(points, *CENTRE, RADIUS_M)
    assert len(expected) == 100_000

    walked: list[int] = []
    distances: list[float] = []
    after: Cursor | None = None
    for _ in range(100_001):
        size = int(rng.choice([1, 7, 100, 100, 100, 333, 1000]))
        page = index.query(*CENTRE, RADIUS_M, limit=size, after=after)
        assert page.total == 100_000
        walked.extend(h.id for h in page.hits)
        distances.extend(h.distance_m for h in page.hits)
        if len(page.hits) < size:
            break
        after = Cursor(page.hits[-1].chord2, page.hits[-1].id)

    assert len(walked) == 100_000
    assert_nearby_exact(points, *CENTRE, RADIUS_M, walked, 100_000, distances)
    # The 2,000 on one spot come as one run ordered by id, though pages cut through it.
    spot = np.flatnonzero(np.isin(np.asarray(walked), points.ids[98_000:100_000]))
    assert np.array_equal(spot, np.arange(spot[0], spot[0] + 2_000))
    assert np.all(np.diff(np.asarray(walked)[spot]) > 0)
