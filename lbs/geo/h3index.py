"""The in-process nearby index: merchants in a tree of H3 cells, answered exactly.

Layout. Every merchant gets its H3 cell at each of a few resolutions, coarse to fine
(default 7, 9, 11), and the base snapshot is sorted by (cell7, cell9, cell11, id). So at
every level a *group* — the merchants sharing a cell there and in all coarser levels —
is one contiguous run of rows, and the groups of one level nest in those above. Per
group we keep its cell centre (unit vector), the longest chord from that centre to any
of its merchants (``rho``, measured on the data, so no assumption about H3's cell
shapes or its imperfect parent/child nesting is needed) and its live merchant count
(per category at the coarsest level).

The coarsest groups come from ``grid_disk`` around the query's cell. Its ``k`` is proven
sufficient, not guessed: coarse cells are assigned geometrically (``latlng_to_cell``),
the cells meeting the circle are connected and include the origin, so once ring ``k``
has no cell whose polygon can reach the circle, no cell beyond it can either.

How a query classifies groups and finds its page: lbs.geo.h3search, which reads this
index's arrays directly (the two modules are one unit, split for length).

Writes after the snapshot go to a small overlay (checked point by point) and tombstone
their base row; the overlay is folded into a new snapshot when it grows.

Not thread-safe: the caller serialises queries and writes (see services.nearby).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import h3.api.basic_int as h3
import numpy as np
import numpy.typing as npt

from lbs.geo.distance import (
    EARTH_RADIUS_M,
    FloatArray,
    chord2_to,
    chord2_to_angle,
    latlng_to_xyz,
    point_to_xyz,
)
from lbs.geo.h3box import Box, BoxHits, box_hits
from lbs.geo.h3clusters import CellTotals, Clusters, build_cell_totals, clusters_in_box
from lbs.geo.h3levels import EPS, IntArray, Level, OverlayRows
from lbs.geo.h3search import Cursor, Hit, NearbyHits, RadiusQuery

__all__ = [
    "DEFAULT_RESOLUTIONS",
    "Box",
    "BoxHits",
    "Clusters",
    "Cursor",
    "Hit",
    "NearbyHits",
    "NearbyIndex",
]

DEFAULT_RESOLUTIONS = (7, 9, 11)
# A cell's polygon lies within this many average edge lengths of its centre: measured
# at most 1.10 over 20,000 random cells and every pentagon at resolutions 6-9.
_POLYGON_RADIUS_EDGES = 1.5
# Rows converted to Python objects at a time while building (bounds peak memory).
_CHUNK = 65_536
# An id table (4 bytes per id up to the largest) is kept while it costs at most this many
# entries per row.
_DENSE_IDS_PER_ROW = 4


class NearbyIndex:
    """Merchant positions in an H3 tree; answers radius queries exactly, nearest first."""

    def __init__(
        self,
        n_categories: int,
        ids: npt.ArrayLike = (),
        lats: npt.ArrayLike = (),
        lngs: npt.ArrayLike = (),
        categories: npt.ArrayLike = (),
        resolutions: Sequence[int] = DEFAULT_RESOLUTIONS,
    ) -> None:
        if list(resolutions) != sorted(set(resolutions)) or not resolutions:
            raise ValueError("resolutions must be increasing, coarse to fine")
        self.resolutions = tuple(resolutions)
        self.n_categories = n_categories
        edge_m = h3.average_hexagon_edge_length(self.resolutions[0], "m")
        self._polygon_radius = _POLYGON_RADIUS_EDGES * edge_m / EARTH_RADIUS_M
        self._ring_spacing = math.sqrt(3.0) * edge_m / EARTH_RADIUS_M
        # Per coarse origin cell: the nearest centre angle of each ring (geometry only).
        self._ring_distances: dict[int, list[float]] = {}
        lats_a = np.asarray(lats, dtype=np.float64)
        lngs_a = np.asarray(lngs, dtype=np.float64)
        xyz = np.empty((len(lats_a), 3), dtype=np.float64)
        for start in range(0, len(lats_a), _CHUNK):
            xyz[start : start + _CHUNK] = latlng_to_xyz(
                lats_a[start : start + _CHUNK], lngs_a[start : start + _CHUNK]
            )
        self._build(
            np.asarray(ids, dtype=np.int64), xyz, np.asarray(categories, dtype=np.int8), lats_a, lngs_a
        )
        self._clear_overlay()

    # -- building -----------------------------------------------------------------

    def _build(
        self, ids: IntArray, xyz: FloatArray, cats: npt.NDArray[np.int8], lats: FloatArray, lngs: FloatArray
    ) -> None:
        """Sort rows into the tree. xyz is kept bit for bit (it decides ties); lat/lng place cells
        and are kept as given too, for box queries (lbs.geo.h3box) to compare exactly."""
        n = len(ids)
        cells = np.empty((n, len(self.resolutions)), dtype=np.int64)
        for start in range(0, n, _CHUNK):
            end = start + _CHUNK
            pairs = list(zip(lats[start:end].tolist(), lngs[start:end].tolist(), strict=True))
            for depth, resolution in enumerate(self.resolutions):
                cells[start:end, depth] = [h3.latlng_to_cell(a, b, resolution) for a, b in pairs]
        order = np.lexsort((ids, *[cells[:, j] for j in reversed(range(cells.shape[1]))]))
        self._ids = ids[order]
        self._cats = cats[order]
        # Permute the wide arrays a column at a time: a second full copy would set peak memory.
        for array in (xyz, cells):
            for j in range(array.shape[1]):
                array[:, j] = array[order, j]
        self._xyz = xyz
        self._lat, self._lng = lats[order], lngs[order]
        self._fine_cells = cells[:, -1].copy()  # clusters take their parents (lbs.geo.h3box)
        del order
        self._alive = np.ones(n, dtype=bool)
        self._all_alive = True  # until a removal: lets queries skip the alive lookup
        self._levels: list[Level] = []
        new_group = np.zeros(n, dtype=bool)
        if n:
            new_group[0] = True
        for depth, resolution in enumerate(self.resolutions):
            column = cells[:, depth]
            if n > 1:
                new_group[1:] |= column[1:] != column[:-1]
            starts = np.flatnonzero(new_group)
            self._levels.append(self._make_level(resolution, column, starts, depth == 0))
        for upper, lower in zip(self._levels, self._levels[1:], strict=False):
            upper.children = np.searchsorted(lower.offsets[:-1], upper.offsets).astype(np.int64)
        # Per coarsest group, the box its merchants span: min lat, max lat, min lng, max lng.
        starts = self._levels[0].offsets[:-1]
        self._group_boxes = (
            np.column_stack(
                [
                    np.minimum.reduceat(self._lat, starts),
                    np.maximum.reduceat(self._lat, starts),
                    np.minimum.reduceat(self._lng, starts),
                    np.maximum.reduceat(self._lng, starts),
                ]
            )
            if n
            else np.empty((0, 4), dtype=np.float64)
        )
        self._id_order = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[self._id_order]
        # Database ids are nearly dense: a table from id to row finds many rows at once
        # (clusters' marked merchants) without a binary search each. None when sparse.
        self._row_of_id: npt.NDArray[np.int32] | None = None
        if n and self._sorted_ids[0] >= 0 and self._sorted_ids[-1] < _DENSE_IDS_PER_ROW * n:
            self._row_of_id = np.full(int(self._sorted_ids[-1]) + 1, -1, dtype=np.int32)
            self._row_of_id[self._ids] = np.arange(n, dtype=np.int32)
        # Per (origin, k): indexed coarse groups of that disk; positions change with each build.
        self._disk_groups: dict[tuple[int, int], IntArray] = {}
        # Per cluster resolution and whether per category, built on first use: None where
        # totals would not pay.
        self._cell_totals: dict[tuple[int, bool], CellTotals | None] = {}

    def _make_level(self, resolution: int, column: IntArray, starts: IntArray, coarsest: bool) -> Level:
        n, n_groups = len(column), len(starts)
        offsets = np.append(starts, n).astype(np.int64)
        cells = column[starts]
        centres = np.empty((n_groups, 3), dtype=np.float64)
        for start in range(0, n_groups, _CHUNK):
            latlngs = np.array([h3.cell_to_latlng(c) for c in cells[start : start + _CHUNK].tolist()])
            centres[start : start + _CHUNK] = latlng_to_xyz(latlngs[:, 0], latlngs[:, 1])
        group_of_row = np.repeat(np.arange(n_groups), np.diff(offsets))
        # rho: the longest chord from the cell centre to a merchant of the group.
        rho2 = np.zeros(n_groups, dtype=np.float64)
        for start in range(0, n, _CHUNK):
            rows = slice(start, start + _CHUNK)
            groups = group_of_row[rows]
            d = self._xyz[rows] - centres[groups]
            np.maximum.at(rho2, groups, (d * d).sum(axis=1))
        rho = np.sqrt(rho2) + EPS
        if coarsest:
            flat = group_of_row * self.n_categories + self._cats.astype(np.int64)
            counts = np.bincount(flat, minlength=n_groups * self.n_categories)
            counts = counts.reshape(n_groups, self.n_categories)
        else:
            counts = np.diff(offsets)
        return Level(resolution, offsets, cells, centres, rho, counts.astype(np.int32), np.empty(0, np.int64))

    def _clear_overlay(self) -> None:
        # merchant id -> (x, y, z, category, lat, lng, cell at the finest resolution)
        self._overlay: dict[int, tuple[float, float, float, int, float, float, int]] = {}
        self._overlay_arrays: OverlayRows | None = None

    # -- writes -------------------------------------------------------------------

    @property
    def size(self) -> int:
        return int(self._alive.sum()) + len(self._overlay)

    def _base_row(self, merchant_id: int) -> int | None:
        i = int(np.searchsorted(self._sorted_ids, merchant_id))
        if i < len(self._sorted_ids) and self._sorted_ids[i] == merchant_id:
            row = int(self._id_order[i])
            return row if self._alive[row] else None
        return None

    def _live_rows(self, merchant_ids: IntArray) -> IntArray:
        """The live snapshot rows of those of ``merchant_ids`` (unique) that have one."""
        if self._row_of_id is not None:
            table = self._row_of_id
            looked_up = table[merchant_ids[(merchant_ids >= 0) & (merchant_ids < len(table))]]
            rows = looked_up[looked_up >= 0].astype(np.int64)
        else:
            pos = np.searchsorted(self._sorted_ids, merchant_ids)
            found = pos < len(self._sorted_ids)
            found[found] = self._sorted_ids[pos[found]] == merchant_ids[found]
            rows = self._id_order[pos[found]]
        return rows if self._all_alive else rows[self._alive[rows]]

    def remove(self, merchant_id: int) -> None:
        if self._overlay.pop(merchant_id, None) is not None:
            self._overlay_arrays = None
            return
        row = self._base_row(merchant_id)
        if row is None:
            return
        self._alive[row] = False
        self._all_alive = False
        for depth, level in enumerate(self._levels):
            group = int(np.searchsorted(level.offsets, row, side="right")) - 1
            if depth == 0:
                level.counts[group, self._cats[row]] -= 1
                for totals in self._cell_totals.values():
                    if totals is not None:
                        totals.remove(group, int(self._cats[row]), int(self._fine_cells[row]), self._xyz[row])
            else:
                level.counts[group] -= 1

    def upsert(self, merchant_id: int, lat: float, lng: float, category: int) -> None:
        self.remove(merchant_id)
        x, y, z = latlng_to_xyz([lat], [lng])[0].tolist()
        fine = h3.latlng_to_cell(lat, lng, self.resolutions[-1])
        self._overlay[merchant_id] = (x, y, z, category, lat, lng, fine)
        self._overlay_arrays = None
        if len(self._overlay) > 4096 + len(self._ids) // 20:
            self.compact()

    def compact(self) -> None:
        """Fold the overlay and tombstones into a fresh snapshot."""
        alive = self._alive
        overlay = list(self._overlay.values())
        xyz = np.concatenate([self._xyz[alive], np.array([v[:3] for v in overlay]).reshape(-1, 3)])
        self._build(
            np.concatenate([self._ids[alive], np.array(list(self._overlay), dtype=np.int64)]),
            xyz,
            np.concatenate([self._cats[alive], np.array([v[3] for v in overlay], dtype=np.int8)]),
            np.concatenate([self._lat[alive], np.array([v[4] for v in overlay], dtype=np.float64)]),
            np.concatenate([self._lng[alive], np.array([v[5] for v in overlay], dtype=np.float64)]),
        )
        self._clear_overlay()

    def _overlay_rows(self) -> OverlayRows:
        if self._overlay_arrays is None:
            values = list(self._overlay.values())
            self._overlay_arrays = OverlayRows(
                ids=np.array(list(self._overlay), dtype=np.int64),
                xyz=np.array([v[:3] for v in values], dtype=np.float64).reshape(-1, 3),
                cats=np.array([v[3] for v in values], dtype=np.int8),
                lats=np.array([v[4] for v in values], dtype=np.float64),
                lngs=np.array([v[5] for v in values], dtype=np.float64),
                cells=np.array([v[6] for v in values], dtype=np.int64),
            )
        return self._overlay_arrays

    def _overlay_view(self) -> tuple[IntArray, FloatArray, npt.NDArray[np.int8]]:
        rows = self._overlay_rows()
        return rows.ids, rows.xyz, rows.cats

    def _totals_at(self, resolution: int, by_category: bool) -> CellTotals | None:
        key = (resolution, by_category)
        if key not in self._cell_totals:
            self._cell_totals[key] = build_cell_totals(self, resolution, by_category)
        return self._cell_totals[key]

    # -- reads --------------------------------------------------------------------

    def _disk_k(self, origin: int, angle: float) -> int:
        """Rings around origin that may meet a circle of this angle centred in origin's cell.

        Ring k is clear when each of its cells' centres is farther than angle plus two
        polygon radii from origin's centre (the query point lies within one polygon radius
        of it). The cells meeting the circle are connected and include origin's cell, so
        no cell beyond a clear ring can meet it: grid_disk(origin, k - 1) suffices.
        """
        rings = self._ring_distances.setdefault(origin, [])
        centre = point_to_xyz(*h3.cell_to_latlng(origin))
        k = 1
        while True:
            if k > len(rings):
                latlngs = [h3.cell_to_latlng(c) for c in h3.grid_ring(origin, k)]
                xyz = latlng_to_xyz([p[0] for p in latlngs], [p[1] for p in latlngs])
                rings.append(float(chord2_to_angle(chord2_to(xyz, centre)).min()))
            if rings[k - 1] - 2 * self._polygon_radius > angle + EPS:
                return k - 1
            k += 1

    def coarse_groups(self, lat: float, lng: float, angle: float) -> IntArray:
        """Positions of the indexed coarsest-level groups that may meet the circle."""
        origin = h3.latlng_to_cell(lat, lng, self.resolutions[0])
        key = (origin, self._disk_k(origin, angle))
        found = self._disk_groups.get(key)
        if found is None:
            cells = self._levels[0].cells
            disk = np.array(h3.grid_disk(*key), dtype=np.int64)
            pos = np.searchsorted(cells, disk)
            valid = pos < len(cells)
            pos, disk = pos[valid], disk[valid]
            found = np.sort(pos[cells[pos] == disk])
            if len(self._disk_groups) > 100_000:
                self._disk_groups.clear()
            self._disk_groups[key] = found
        return found

    def query(
        self,
        lat: float,
        lng: float,
        radius_m: float,
        limit: int,
        after: Cursor | None = None,
        categories: Sequence[int] | None = None,
    ) -> NearbyHits:
        """Merchants within radius_m of (lat, lng), nearest first (ties by id), after a cursor."""
        return RadiusQuery(self, lat, lng, radius_m, limit, after, categories).run()

    def in_box(self, box: Box, categories: Sequence[int] | None = None, *, by_id: bool = True) -> BoxHits:
        """Every live merchant inside the box (edges included), ids ascending (or unordered)."""
        return box_hits(self, box, categories, by_id=by_id)

    def clusters(
        self,
        box: Box,
        resolution: int,
        categories: Sequence[int] | None = None,
        marked_ids: IntArray | None = None,
    ) -> Clusters:
        """Every live merchant inside the box counted per H3 cell at ``resolution`` (at most
        the finest), with how many of each cell's are among ``marked_ids`` (sorted, unique)."""
        return clusters_in_box(self, box, resolution, categories, marked_ids)

    def within(
        self, lat: float, lng: float, radius_m: float, categories: Sequence[int] | None = None
    ) -> tuple[IntArray, FloatArray]:
        """Every merchant within radius_m as arrays (ids, chord2), nearest first, ties by id:
        query() without a limit, for callers that filter or rank all of them."""
        return RadiusQuery(self, lat, lng, radius_m, 0, None, categories).every()  # no page: no limit

    def categories_of(self, merchant_ids: Sequence[int]) -> dict[int, int]:
        """The category code of each live merchant among ``merchant_ids`` (others left out)."""
        found = {}
        for merchant_id in merchant_ids:
            overlaid = self._overlay.get(merchant_id)
            if overlaid is not None:
                found[merchant_id] = overlaid[3]
                continue
            row = self._base_row(merchant_id)
            if row is not None:
                found[merchant_id] = int(self._cats[row])
        return found
