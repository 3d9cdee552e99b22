"""A brute-force nearby oracle: haversine distance to every point, written apart from lbs.geo.

It shares no code with lbs, so a wrong formula or constant there cannot hide here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# The sphere of PostGIS geography with use_spheroid=false: the WGS84 mean radius (2a + b) / 3.
EARTH_RADIUS_M = 6_371_008.771415059

# Distances closer than this are ties, and points closer than this to the boundary may be
# in or out. The index compares squared chords, the oracle uses haversine: the two round
# differently, by ~1e-9 m at these scales, so a tolerance a thousand times larger never
# hides a real error (the smallest real one is a point missing or a wrong order by > 1 mm).
TIE_M = 1e-6

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def haversine_m(lat: float, lon: float, lats: npt.ArrayLike, lons: npt.ArrayLike) -> FloatArray:
    """Great-circle metres from (lat, lon) to each point, by the haversine formula."""
    phi1 = math.radians(lat)
    phi2 = np.radians(np.asarray(lats, dtype=np.float64))
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lons, dtype=np.float64) - lon)
    a = np.sin(dphi / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def destination(lat: float, lon: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point distance_m from (lat, lon) along the initial bearing, lon in [-180, 180)."""
    phi1, lam1 = math.radians(lat), math.radians(lon)
    theta, delta = math.radians(bearing_deg), distance_m / EARTH_RADIUS_M
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lam2 = lam1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1), math.cos(delta) - math.sin(phi1) * sin_phi2
    )
    lat2 = max(-90.0, min(90.0, math.degrees(phi2)))
    lon2 = (math.degrees(lam2) + 540.0) % 360.0 - 180.0
    return lat2, lon2


@dataclass(frozen=True)
class Points:
    """The data the oracle searches; ``eligible`` marks what a query may return (status, category)."""

    ids: IntArray
    lats: FloatArray
    lons: FloatArray
    eligible: npt.NDArray[np.bool_]

    @classmethod
    def of(
        cls,
        ids: Sequence[int],
        lats: Sequence[float],
        lons: Sequence[float],
        eligible: Sequence[bool] | None = None,
    ) -> Points:
        return cls(
            np.asarray(ids, dtype=np.int64),
            np.asarray(lats, dtype=np.float64),
            np.asarray(lons, dtype=np.float64),
            np.ones(len(ids), dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool),
        )

    def where(self, mask: npt.ArrayLike) -> Points:
        return Points(self.ids, self.lats, self.lons, self.eligible & np.asarray(mask, dtype=bool))


def expected_order(points: Points, lat: float, lon: float, radius_m: float) -> list[int]:
    """Eligible ids surely within the radius, nearest first, ties by id."""
    d = haversine_m(lat, lon, points.lats, points.lons)
    inside = points.eligible & (d <= radius_m - TIE_M)
    order = np.lexsort((points.ids[inside], d[inside]))
    return [int(i) for i in points.ids[inside][order]]


def assert_nearby_exact(
    points: Points,
    lat: float,
    lon: float,
    radius_m: float,
    got_ids: Sequence[int],
    total: int | None = None,
    got_distances_m: Sequence[float] | None = None,
    distance_tol_m: float = TIE_M,
) -> None:
    """The complete answer (all pages) for a query: the exact set, in distance order, ties by id."""
    d = haversine_m(lat, lon, points.lats, points.lons)
    row_of = {int(i): r for r, i in enumerate(points.ids)}
    got = [int(i) for i in got_ids]
    assert len(set(got)) == len(got), f"repeated ids: {sorted(i for i in set(got) if got.count(i) > 1)}"
    unknown = [i for i in got if i not in row_of]
    assert not unknown, f"ids not in the data: {unknown}"
    rows = np.array([row_of[i] for i in got], dtype=np.int64)

    surely_in = points.eligible & (d <= radius_m - TIE_M)
    maybe_in = points.eligible & (d <= radius_m + TIE_M)
    missing = sorted(set(points.ids[surely_in].tolist()) - set(got))
    assert not missing, (
        f"missing (oracle distances {[float(d[row_of[i]]) for i in missing[:5]]}): {missing[:20]}"
    )
    extra = [int(points.ids[r]) for r in rows if not maybe_in[r]]
    assert not extra, (
        f"returned but not eligible or outside {radius_m} m "
        f"(oracle distances {[float(d[row_of[i]]) for i in extra[:5]]}): {extra[:20]}"
    )
    if total is not None:
        assert total == len(got), f"total {total} but {len(got)} results"

    if len(rows) > 1:
        dist = d[rows]
        backwards = np.flatnonzero(dist[1:] < dist[:-1] - TIE_M)
        if len(backwards):
            at = int(backwards[0])
            raise AssertionError(
                f"not nearest first at position {at + 1}: "
                f"{got[at]} at {dist[at]} m before {got[at + 1]} at {dist[at + 1]} m"
            )
        same_place = (points.lats[rows][1:] == points.lats[rows][:-1]) & (
            points.lons[rows][1:] == points.lons[rows][:-1]
        )
        ids = np.asarray(got, dtype=np.int64)
        bad_ties = np.flatnonzero(same_place & (ids[1:] <= ids[:-1]))
        assert not len(bad_ties), (
            f"ties not by id at position {int(bad_ties[0]) + 1}: {got[bad_ties[0] : bad_ties[0] + 2]}"
        )

    if got_distances_m is not None:
        errors = np.abs(np.asarray(got_distances_m, dtype=np.float64) - d[rows])
        worst = int(np.argmax(errors)) if len(errors) else 0
        assert not len(errors) or errors[worst] <= distance_tol_m, (
            f"distance of {got[worst]} is {got_distances_m[worst]} m, oracle {d[rows][worst]} m"
        )
