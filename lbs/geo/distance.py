"""The one great-circle distance: points as unit vectors, ordered by squared chord length.

Distances are compared as squared chords of the unit sphere. The chord is a monotone
function of the great-circle distance, needs no trigonometry per point, works the same
across the antimeridian and at the poles, and is computed by the same elementwise
operations whatever the array length, so a cursor's key is reproduced bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# The WGS84 mean radius (2a + b) / 3: the sphere PostGIS uses for geography when
# use_spheroid is false, so that it can serve as our oracle.
EARTH_RADIUS_M = 6_371_008.771415059

FloatArray = npt.NDArray[np.float64]


def latlng_to_xyz(lat_deg: npt.ArrayLike, lng_deg: npt.ArrayLike) -> FloatArray:
    """Unit vectors, shape (n, 3), for arrays of latitudes and longitudes in degrees."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lng = np.radians(np.asarray(lng_deg, dtype=np.float64))
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lng), cos_lat * np.sin(lng), np.sin(lat)], axis=-1)


def point_to_xyz(lat_deg: float, lng_deg: float) -> tuple[float, float, float]:
    lat, lng = math.radians(lat_deg), math.radians(lng_deg)
    return (math.cos(lat) * math.cos(lng), math.cos(lat) * math.sin(lng), math.sin(lat))


def chord2_to(xyz: FloatArray, point: tuple[float, float, float]) -> FloatArray:
    """Squared chord from each row of xyz to point, in a fixed order of operations."""
    dx = xyz[:, 0] - point[0]
    dy = xyz[:, 1] - point[1]
    dz = xyz[:, 2] - point[2]
    return (dx * dx + dy * dy) + dz * dz


def chord2_to_angle(chord2: npt.ArrayLike) -> FloatArray:
    """Central angle in radians for squared chords."""
    c = np.sqrt(np.clip(np.asarray(chord2, dtype=np.float64), 0.0, 4.0))
    return 2.0 * np.arcsin(c / 2.0)


def chord2_to_m(chord2: npt.ArrayLike) -> FloatArray:
    return EARTH_RADIUS_M * chord2_to_angle(chord2)


def m_to_chord2(distance_m: float) -> float:
    """The squared chord of a great-circle distance (capped at the antipode)."""
    angle = min(distance_m / EARTH_RADIUS_M, math.pi)
    return (2.0 * math.sin(angle / 2.0)) ** 2


def great_circle_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres between two points (degrees)."""
    a = point_to_xyz(lat1, lng1)
    b = point_to_xyz(lat2, lng2)
    c2 = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2
    return EARTH_RADIUS_M * 2.0 * math.asin(min(1.0, math.sqrt(c2) / 2.0))
