"""The in-process nearby index: merchants bucketed by H3 cell, answered exactly.

Layout: the merchants of the base snapshot are sorted by (cell, id), so each non-empty
cell owns one contiguous run. Per cell we keep its centre (unit vector), the largest
angle from that centre to any of its merchants (``rho``, measured on the data, so the
classification below is exact whatever H3's cell shapes do near pentagons) and its live
merchant count per category.

A query at angle ``r`` classifies each candidate cell with centre angle ``d``:

* ``d + rho <= r``: every merchant is inside, counted from the cell's counts without
  looking at any merchant;
* ``d - rho > r``: every merchant is outside, skipped;
* otherwise each merchant is checked.

Candidate cells come from ``grid_disk`` around the query's cell. Its ``k`` is proven
sufficient, not guessed: the cells meeting the circle are connected and include the
origin, so once ring ``k`` has no cell whose polygon can reach the circle, no cell
beyond it can either.

Writes after the snapshot go to a small overlay (checked point by point) and tombstone
their base entry; the overlay is folded into a new snapshot when it grows.

Not thread-safe: the caller serialises queries and writes (see services.nearby).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import h3.api.basic_int as h3
import numpy as np
import numpy.typing as npt

from lbs.geo.distance import (
    EARTH_RADIUS_M,
    FloatArray,
    chord2_to,
    chord2_to_angle,
    chord2_to_m,
    latlng_to_xyz,
    m_to_chord2,
    point_to_xyz,
)

IntArray = npt.NDArray[np.int64]

# Slack, in radians (~6 mm), that keeps rounding from turning a boundary cell into an
# inside or outside one.
_EPS = 1e-9
# A cell's polygon lies within this many average edge lengths of its centre: measured
# at most 1.10 over 20,000 random cells and every pentagon at resolutions 6-9.
_POLYGON_RADIUS_EDGES = 1.5


@dataclass(frozen=True)
class Hit:
    id: int
    chord2: float

    @property
    def distance_m(self) -> float:
        return float(chord2_to_m(self.chord2))


@dataclass(frozen=True)
class NearbyHits:
    total: int
    hits: list[Hit]


@dataclass(frozen=True)
class Cursor:
    """Position after the last hit of a page: results continue strictly after (chord2, id)."""

    chord2: float
    id: int


def _ranges(starts: IntArray, ends: IntArray) -> IntArray:
    """Concatenation of arange(s, e) for each pair, without a Python loop."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def _after(c2: FloatArray, ids: IntArray, cursor: Cursor | None) -> npt.NDArray[np.bool_]:
    if cursor is None:
        return np.ones(len(c2), dtype=bool)
    return (c2 > cursor.chord2) | ((c2 == cursor.chord2) & (ids > cursor.id))


class NearbyIndex:
    """Merchant positions by H3 cell; answers radius queries exactly, nearest first."""

    def __init__(
        self,
        resolution: int,
        n_categories: int,
        ids: npt.ArrayLike = (),
        lats: npt.ArrayLike = (),
        lngs: npt.ArrayLike = (),
        categories: npt.ArrayLike = (),
    ) -> None:
        self.resolution = resolution
        self.n_categories = n_categories
        edge_m = h3.average_hexagon_edge_length(resolution, "m")
        self._polygon_radius = _POLYGON_RADIUS_EDGES * edge_m / EARTH_RADIUS_M
        self._ring_spacing = math.sqrt(3.0) * edge_m / EARTH_RADIUS_M
        ids_a = np.asarray(ids, dtype=np.int64)
        lats_a = np.asarray(lats, dtype=np.float64)
        lngs_a = np.asarray(lngs, dtype=np.float64)
        cells = self._cells_of(lats_a, lngs_a)
        self._build(ids_a, latlng_to_xyz(lats_a, lngs_a).reshape(-1, 3), np.asarray(categories, dtype=np.int8), cells)
        self._clear_overlay()

    # -- building -----------------------------------------------------------------

    def _cells_of(self, lats: FloatArray, lngs: FloatArray) -> IntArray:
        res = self.resolution
        return np.fromiter(
            (h3.latlng_to_cell(a, b, res) for a, b in zip(lats.tolist(), lngs.tolist(), strict=True)),
            dtype=np.int64,
            count=len(lats),
        )

    def _build(self, ids: IntArray, xyz: FloatArray, cats: npt.NDArray[np.int8], cells: IntArray) -> None:
        order = np.lexsort((ids, cells))
        self._ids = ids[order]
        self._xyz = np.ascontiguousarray(xyz[order])
        self._cats = cats[order]
        self._merchant_cells = cells[order]
        self._alive = np.ones(len(ids), dtype=bool)
        self._cells, starts = np.unique(self._merchant_cells, return_index=True)
        self._offsets = np.append(starts, len(ids)).astype(np.int64)
        n_cells = len(self._cells)
        centres = [h3.cell_to_latlng(int(c)) for c in self._cells]
        self._centres = latlng_to_xyz(
            [c[0] for c in centres], [c[1] for c in centres]
        ).reshape(-1, 3)
        cell_of_row = np.repeat(np.arange(n_cells), np.diff(self._offsets))
        if n_cells:
            d2 = ((self._xyz - self._centres[cell_of_row]) ** 2).sum(axis=1)
            self._rho = chord2_to_angle(np.maximum.reduceat(d2, starts)) + _EPS
        else:
            self._rho = np.empty(0, dtype=np.float64)
        flat = cell_of_row * self.n_categories + self._cats.astype(np.int64)
        self._counts = (
            np.bincount(flat, minlength=n_cells * self.n_categories)
            .astype(np.int32)
            .reshape(n_cells, self.n_categories)
        )
        self._id_order = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[self._id_order]

    def _clear_overlay(self) -> None:
        self._overlay: dict[int, tuple[float, float, float, int, int]] = {}
        self._overlay_arrays: tuple[IntArray, FloatArray, npt.NDArray[np.int8]] | None = None

    # -- writes -------------------------------------------------------------------

    @property
    def size(self) -> int:
        return int(self._alive.sum()) + len(self._overlay)

    def _base_position(self, merchant_id: int) -> int | None:
        i = int(np.searchsorted(self._sorted_ids, merchant_id))
        if i < len(self._sorted_ids) and self._sorted_ids[i] == merchant_id:
            pos = int(self._id_order[i])
            return pos if self._alive[pos] else None
        return None

    def remove(self, merchant_id: int) -> None:
        if self._overlay.pop(merchant_id, None) is not None:
            self._overlay_arrays = None
            return
        pos = self._base_position(merchant_id)
        if pos is None:
            return
        self._alive[pos] = False
        cell = int(np.searchsorted(self._cells, self._merchant_cells[pos]))
        self._counts[cell, self._cats[pos]] -= 1

    def upsert(self, merchant_id: int, lat: float, lng: float, category: int) -> None:
        self.remove(merchant_id)
        x, y, z = latlng_to_xyz([lat], [lng])[0].tolist()
        cell = h3.latlng_to_cell(lat, lng, self.resolution)
        self._overlay[merchant_id] = (x, y, z, category, cell)
        self._overlay_arrays = None
        if len(self._overlay) > 4096 + len(self._ids) // 20:
            self.compact()

    def apply(self, upserts: Iterable[tuple[int, float, float, int]], removals: Iterable[int]) -> None:
        for merchant_id in removals:
            self.remove(merchant_id)
        for merchant_id, lat, lng, category in upserts:
            self.upsert(merchant_id, lat, lng, category)

    def compact(self) -> None:
        """Fold the overlay and tombstones into a fresh snapshot."""
        alive = self._alive
        ov = list(self._overlay.items())
        ids = np.concatenate([self._ids[alive], np.array([k for k, _ in ov], dtype=np.int64)])
        xyz = np.concatenate([self._xyz[alive], np.array([v[:3] for _, v in ov], dtype=np.float64).reshape(-1, 3)])
        cats = np.concatenate([self._cats[alive], np.array([v[3] for _, v in ov], dtype=np.int8)])
        cells = np.concatenate([self._merchant_cells[alive], np.array([v[4] for _, v in ov], dtype=np.int64)])
        self._build(ids, xyz, cats, cells)
        self._clear_overlay()

    def _overlay_view(self) -> tuple[IntArray, FloatArray, npt.NDArray[np.int8]]:
        if self._overlay_arrays is None:
            items = list(self._overlay.items())
            self._overlay_arrays = (
                np.array([k for k, _ in items], dtype=np.int64),
                np.array([v[:3] for _, v in items], dtype=np.float64).reshape(-1, 3),
                np.array([v[3] for _, v in items], dtype=np.int8),
            )
        return self._overlay_arrays

    # -- reads --------------------------------------------------------------------

    def candidate_cells(self, lat: float, lng: float, angle: float) -> list[int]:
        """Every H3 cell (indexed or not) that may meet the circle: a grid disk, proven wide enough."""
        origin = h3.latlng_to_cell(lat, lng, self.resolution)
        point = point_to_xyz(lat, lng)
        k = max(1, math.ceil((angle + self._polygon_radius) / self._ring_spacing))
        while True:
            ring = h3.grid_ring(origin, k)
            centres = [h3.cell_to_latlng(c) for c in ring]
            xyz = latlng_to_xyz([c[0] for c in centres], [c[1] for c in centres])
            reach = chord2_to_angle(chord2_to(xyz, point)) - self._polygon_radius
            if bool((reach > angle + _EPS).all()):
                return list(h3.grid_disk(origin, k - 1))
            k += 1

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
        point = point_to_xyz(lat, lng)
        max_c2 = m_to_chord2(radius_m)
        angle = radius_m / EARTH_RADIUS_M
        cats = None if categories is None else np.asarray(sorted(set(categories)), dtype=np.int8)
        total = 0
        found_c2: list[FloatArray] = []
        found_ids: list[IntArray] = []

        def accept(rows: IntArray | None, xyz: FloatArray, ids: IntArray, row_cats: npt.NDArray[np.int8]) -> int:
            c2 = chord2_to(xyz, point)
            ok = c2 <= max_c2
            if rows is not None:
                ok &= self._alive[rows]
            if cats is not None:
                ok &= np.isin(row_cats, cats)
            c2, ids = c2[ok], ids[ok]
            later = _after(c2, ids, after)
            found_c2.append(c2[later])
            found_ids.append(ids[later])
            return int(ok.sum())

        ov_ids, ov_xyz, ov_cats = self._overlay_view()
        if len(ov_ids):
            total += accept(None, ov_xyz, ov_ids, ov_cats)

        if len(self._cells):
            disk = np.array(self.candidate_cells(lat, lng, angle), dtype=np.int64)
            pos = np.searchsorted(self._cells, disk)
            inside_range = pos < len(self._cells)
            pos, disk = pos[inside_range], disk[inside_range]
            cell_idx = pos[self._cells[pos] == disk]
            centre_angle = chord2_to_angle(chord2_to(self._centres[cell_idx], point))
            rho = self._rho[cell_idx]
            near = centre_angle - rho <= angle + _EPS
            cell_idx, centre_angle, rho = cell_idx[near], centre_angle[near], rho[near]
            inside = centre_angle + rho <= angle - _EPS
            counts = self._counts[cell_idx]
            counts = counts.sum(axis=1) if cats is None else counts[:, cats].sum(axis=1)
            total += int(counts[inside].sum())

            edge = cell_idx[~inside]
            rows = _ranges(self._offsets[edge], self._offsets[edge + 1])
            total += accept(rows, self._xyz[rows], self._ids[rows], self._cats[rows])

            self._page_from_inside_cells(
                cell_idx[inside],
                counts[inside],
                np.maximum(centre_angle - rho, 0.0)[inside],
                (centre_angle + rho)[inside],
                limit,
                after,
                found_c2,
                accept,
            )

        c2_all = np.concatenate(found_c2) if found_c2 else np.empty(0)
        ids_all = np.concatenate(found_ids) if found_ids else np.empty(0, dtype=np.int64)
        order = np.lexsort((ids_all, c2_all))[:limit]
        hits = [Hit(int(i), float(c)) for i, c in zip(ids_all[order], c2_all[order], strict=True)]
        return NearbyHits(total=total, hits=hits)

    def _page_from_inside_cells(
        self,
        cell_idx: IntArray,
        counts: IntArray,
        nearest: FloatArray,
        farthest: FloatArray,
        limit: int,
        after: Cursor | None,
        found_c2: list[FloatArray],
        accept: object,
    ) -> None:
        """Read only as many inside cells as the page needs, nearest cells first."""
        if after is not None:
            # Cells wholly before the cursor cannot contribute.
            keep = farthest >= float(chord2_to_angle(after.chord2)) - _EPS
            cell_idx, counts, nearest = cell_idx[keep], counts[keep], nearest[keep]
        order = np.argsort(nearest, kind="stable")
        cumulative = np.cumsum(counts[order])
        taken = 0
        chunk_rows = limit

        def read(cells: IntArray) -> None:
            rows = _ranges(self._offsets[cells], self._offsets[cells + 1])
            accept(rows, self._xyz[rows], self._ids[rows], self._cats[rows])  # type: ignore[operator]

        while taken < len(order):
            have = sum(len(c) for c in found_c2)
            if have >= limit:
                kth = float(np.partition(np.concatenate(found_c2), limit - 1)[limit - 1])
                rest = order[taken:]
                read(cell_idx[rest[nearest[rest] <= float(chord2_to_angle(kth)) + _EPS]])
                return
            base = int(cumulative[taken - 1]) if taken else 0
            upto = int(np.searchsorted(cumulative, base + chunk_rows)) + 1
            read(cell_idx[order[taken:upto]])
            taken = upto
            chunk_rows *= 2
