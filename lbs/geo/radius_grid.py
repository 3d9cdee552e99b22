"""All of many fixed points within a radius of a place, in bulk: what the nearby index
answers, found by a grid over unit vectors and handed back unsorted.

The nearby index is built for pages (the nearest twenty, then the next). Training and the
offline evaluation ask something else of a city: for each of thousands of origins, every
merchant within 2 km (about 30,000 in a city of a million), of which a training case then
keeps a random hundred by rank. Sorting each answer, or walking the index's groups for it,
cost 40 ms a query there; this grid reads the cubes of unit-vector space that can hold a
point within the radius, one contiguous run per (x, y) column of cubes, and keeps what
the chord admits (under 1 ms). Nothing about latitude or longitude: the poles and the
antimeridian are not special.

The answer is the index's, bit for bit: positions are computed as NearbyIndex computes
them (latlng_to_xyz in the same chunks), the origin as a query point (point_to_xyz), and
a point is inside when chord2_to(...) <= m_to_chord2(radius_m), the index's own test;
tests/lbs/geo/test_radius_grid.py checks it against NearbyIndex.within.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from lbs.geo.distance import FloatArray, chord2_to, latlng_to_xyz, m_to_chord2, point_to_xyz
from lbs.geo.h3levels import IntArray, ranges

# NearbyIndex computes positions this many at a time; the same chunks give the same bits.
_CHUNK = 65_536
# Cubes per query radius along an axis. With the box's corners dropped and each column's z
# range cut to the ball, a query in a city reads 1.12 x the points within its radius in
# up to 17 x 17 runs at 8 (0.68 ms for 33,000 inside), 1.23 x at 4 (0.86 ms).
_CUBES_PER_RADIUS = 8
# Coarsest cube, so that three cube coordinates pack into one int64 key (2^20 per axis).
_MIN_SIDE = 2.0 / (1 << 20)
# Slack in chord units (far above float64 rounding of unit vectors, far below a metre), so
# that a point inside the chord is never in a cube the query's box leaves out.
_SLACK = 1e-9


def _positions(lats: FloatArray, lngs: FloatArray) -> FloatArray:
    xyz = np.empty((len(lats), 3), dtype=np.float64)
    for start in range(0, len(lats), _CHUNK):
        xyz[start : start + _CHUNK] = latlng_to_xyz(
            lats[start : start + _CHUNK], lngs[start : start + _CHUNK]
        )
    return xyz


class RadiusGrid:
    """Fixed points (ids unique) and one radius; within() answers for any place."""

    def __init__(self, ids: npt.ArrayLike, lats: npt.ArrayLike, lngs: npt.ArrayLike, radius_m: float) -> None:
        ids_a = np.asarray(ids, dtype=np.int64)
        xyz = _positions(np.asarray(lats, dtype=np.float64), np.asarray(lngs, dtype=np.float64))
        self.max_c2 = m_to_chord2(radius_m)
        self._reach = math.sqrt(self.max_c2) + _SLACK
        self._side = max(math.sqrt(self.max_c2) / _CUBES_PER_RADIUS, _MIN_SIDE)
        self._per_axis = int(2.0 / self._side) + 2
        keys = self._keys(np.floor((xyz + 1.0) / self._side).astype(np.int64))
        order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[order]
        self._ids = ids_a[order]
        # Coordinate-major: a query gathers each coordinate contiguously (np.take: five
        # times faster than rows of three), and chord2_to reads the transposed view.
        self._coordinates = np.ascontiguousarray(xyz[order].T)
        self._by_id = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[self._by_id]

    def _keys(self, cubes: IntArray) -> IntArray:
        n = self._per_axis
        return (cubes[..., 0] * n + cubes[..., 1]) * n + cubes[..., 2]

    def chord2(self, lat: float, lng: float, point_id: int) -> float | None:
        """The squared chord from (lat, lng) to one point, as within() computes it; None
        for an id the grid does not hold."""
        at = int(np.searchsorted(self._sorted_ids, point_id))
        if at == len(self._sorted_ids) or self._sorted_ids[at] != point_id:
            return None
        row = self._by_id[at : at + 1]
        return float(chord2_to(np.take(self._coordinates, row, axis=1).T, point_to_xyz(lat, lng))[0])

    def within(self, lat: float, lng: float) -> tuple[IntArray, FloatArray]:
        """(ids, squared chords) of every point within the radius of (lat, lng), unsorted."""
        point = point_to_xyz(lat, lng)
        columns, z_lo, z_hi = self._columns(point)
        starts = np.searchsorted(self._sorted_keys, columns + z_lo, side="left")
        ends = np.searchsorted(self._sorted_keys, columns + z_hi, side="right")
        rows = ranges(starts, ends)
        c2 = chord2_to(np.take(self._coordinates, rows, axis=1).T, point)
        inside = c2 <= self.max_c2
        return self._ids[rows[inside]], c2[inside]

    def _columns(self, point: tuple[float, float, float]) -> tuple[IntArray, IntArray, IntArray]:
        """The (x, y) columns of cubes that can hold a point within reach, each with the z
        range of cubes it needs: a column's nearest (x, y) to the point leaves at most
        sqrt(reach^2 - dxy^2) for z. Columns of the box's corners drop out."""
        side, n = self._side, self._per_axis
        axes = []
        for p in point[:2]:
            cubes = np.arange(
                max(math.floor((p - self._reach + 1.0) / side), 0),
                min(math.floor((p + self._reach + 1.0) / side), n - 1) + 1,
                dtype=np.int64,
            )
            low = cubes * side - 1.0
            axes.append((cubes, np.maximum(np.maximum(low - p, p - (low + side)), 0.0)))
        (xs, dx), (ys, dy) = axes
        left = self._reach**2 - (dx[:, None] ** 2 + dy[None, :] ** 2)
        keep = left >= 0.0
        half = np.sqrt(left[keep])
        z = point[2] + 1.0
        z_lo = np.maximum(np.floor((z - half) / side), 0).astype(np.int64)
        z_hi = np.minimum(np.floor((z + half) / side), n - 1).astype(np.int64)
        columns = ((xs[:, None] * n + ys[None, :]) * n)[keep]
        return columns, z_lo, z_hi
