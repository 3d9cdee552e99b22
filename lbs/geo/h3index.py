"""The in-process nearby index: merchants in a tree of H3 cells, answered exactly.

Layout. Every merchant gets its H3 cell at each of a few resolutions, coarse to fine
(default 7, 9, 11), and the base snapshot is sorted by (cell7, cell9, cell11, id). So at
every level a *group* — the merchants sharing a cell there and in all coarser levels —
is one contiguous run of rows, and the groups of one level nest in those above. Per
group we keep its cell centre (unit vector), the longest chord from that centre to any
of its merchants (``rho``, measured on the data, so no assumption about H3's cell
shapes or its imperfect parent/child nesting is needed) and its live merchant count
(per category at the coarsest level).

Distances between bounds are chord lengths through the unit sphere: a true metric, so
the triangle inequality holds and no trigonometry is needed per group. A query of
radius chord ``r`` classifies a group whose centre lies at chord ``d``:

* ``d + rho <= r``: all of it is inside: counted from its counts, no merchant visited;
* ``d - rho > r``: all of it is outside: skipped;
* otherwise it crosses the circle: its child groups are classified in turn, and at the
  finest level each merchant is checked.

So per-merchant work is confined to a band about two finest-cell radii wide.

The coarsest groups come from ``grid_disk`` around the query's cell. Its ``k`` is proven
sufficient, not guessed: coarse cells are assigned geometrically (``latlng_to_cell``),
the cells meeting the circle are connected and include the origin, so once ring ``k``
has no cell whose polygon can reach the circle, no cell beyond it can either.

A page of the nearest ``limit`` after a cursor needs only a few groups: inside groups'
counts and farthest distances give an upper bound on the limit-th distance; groups
whose nearest possible point is beyond it are dropped; the rest are refined level by
level, and only the finest survivors are read.

Writes after the snapshot go to a small overlay (checked point by point) and tombstone
their base row; the overlay is folded into a new snapshot when it grows.

Not thread-safe: the caller serialises queries and writes (see services.nearby).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

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
BoolArray = npt.NDArray[np.bool_]

DEFAULT_RESOLUTIONS = (7, 9, 11)
# Slack, in radians (~6 mm), so that rounding never turns a crossing group into an
# inside or outside one.
_EPS = 1e-9
# A cell's polygon lies within this many average edge lengths of its centre: measured
# at most 1.10 over 20,000 random cells and every pentagon at resolutions 6-9.
_POLYGON_RADIUS_EDGES = 1.5
# Rows converted to Python objects at a time while building (bounds peak memory).
_CHUNK = 65_536


class Hit(NamedTuple):
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


def _after(c2: FloatArray, ids: IntArray, cursor: Cursor | None) -> BoolArray:
    if cursor is None:
        return np.ones(len(c2), dtype=bool)
    return (c2 > cursor.chord2) | ((c2 == cursor.chord2) & (ids > cursor.id))


def _kth_upper_bound(farthest: FloatArray, counts: IntArray, k: int) -> float:
    """Smallest distance within which the groups surely hold k merchants (inf if they don't)."""
    holding = counts > 0
    if int(counts.sum()) < k:
        return math.inf
    farthest, counts = farthest[holding], counts[holding]
    if len(farthest) > k:
        # k non-empty groups hold at least k merchants: nothing farther can be the answer.
        cap = np.partition(farthest, k - 1)[k - 1]
        near = farthest <= cap
        farthest, counts = farthest[near], counts[near]
    order = np.argsort(farthest, kind="stable")
    j = int(np.searchsorted(np.cumsum(counts[order]), k))
    return float(farthest[order[j]])


# Inside groups awaiting the page: (level, groups, nearest chord, farthest chord, counts).
_PoolEntry = tuple[int, IntArray, FloatArray, FloatArray, IntArray]


@dataclass
class _Level:
    """The groups of one resolution: contiguous row runs, nested in the level above."""

    resolution: int
    offsets: IntArray  # group g owns rows offsets[g]:offsets[g + 1]
    cells: IntArray  # the H3 cell of each group at this resolution
    centres: FloatArray
    rho: FloatArray
    counts: IntArray  # live merchants (level 0: per category, shape (groups, categories))
    children: IntArray  # child groups of g: children[g]:children[g + 1] (not on the finest level)


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
        """Sort rows into the tree. xyz is kept bit for bit (it decides ties); lat/lng only place cells."""
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
        del order
        self._alive = np.ones(n, dtype=bool)
        self._all_alive = True  # until a removal: lets queries skip the alive lookup
        self._levels: list[_Level] = []
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
        self._id_order = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[self._id_order]
        # Per (origin, k): indexed coarse groups of that disk; positions change with each build.
        self._disk_groups: dict[tuple[int, int], IntArray] = {}

    def _make_level(self, resolution: int, column: IntArray, starts: IntArray, coarsest: bool) -> _Level:
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
        rho = np.sqrt(rho2) + _EPS
        if coarsest:
            flat = group_of_row * self.n_categories + self._cats.astype(np.int64)
            counts = np.bincount(flat, minlength=n_groups * self.n_categories)
            counts = counts.reshape(n_groups, self.n_categories)
        else:
            counts = np.diff(offsets)
        return _Level(
            resolution, offsets, cells, centres, rho, counts.astype(np.int32), np.empty(0, np.int64)
        )

    def _clear_overlay(self) -> None:
        self._overlay: dict[int, tuple[float, float, float, int]] = {}
        self._overlay_arrays: tuple[IntArray, FloatArray, npt.NDArray[np.int8]] | None = None

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
            else:
                level.counts[group] -= 1

    def upsert(self, merchant_id: int, lat: float, lng: float, category: int) -> None:
        self.remove(merchant_id)
        x, y, z = latlng_to_xyz([lat], [lng])[0].tolist()
        self._overlay[merchant_id] = (x, y, z, category)
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
            np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0))),
            np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])),
        )
        self._clear_overlay()

    def _overlay_view(self) -> tuple[IntArray, FloatArray, npt.NDArray[np.int8]]:
        if self._overlay_arrays is None:
            values = list(self._overlay.values())
            self._overlay_arrays = (
                np.array(list(self._overlay), dtype=np.int64),
                np.array([v[:3] for v in values], dtype=np.float64).reshape(-1, 3),
                np.array([v[3] for v in values], dtype=np.int8),
            )
        return self._overlay_arrays

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
            if rings[k - 1] - 2 * self._polygon_radius > angle + _EPS:
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
        return _Query(self, lat, lng, radius_m, limit, after, categories).run()


class _Query:
    """One radius query over a NearbyIndex: the total, then the page."""

    def __init__(
        self,
        index: NearbyIndex,
        lat: float,
        lng: float,
        radius_m: float,
        limit: int,
        after: Cursor | None,
        categories: Sequence[int] | None,
    ) -> None:
        self.ix = index
        self.lat, self.lng = lat, lng
        self.point = point_to_xyz(lat, lng)
        self.max_c2 = m_to_chord2(radius_m)
        # Bounds are compared as chord lengths: a true distance, so the triangle inequality
        # holds, and no trigonometry is needed per group.
        self.radius = math.sqrt(self.max_c2)
        self.angle = radius_m / EARTH_RADIUS_M
        self.limit = limit
        self.after = after
        self.after_chord = -math.inf if after is None else math.sqrt(after.chord2)
        self.cats = None if categories is None else np.asarray(sorted(set(categories)), dtype=np.int8)
        self.total = 0
        self.found_c2: list[FloatArray] = []
        self.found_ids: list[IntArray] = []
        # Inside groups not yet read, per level: (group ids, nearest chord, farthest chord, counts)
        self.inside: list[list[tuple[IntArray, FloatArray, FloatArray, IntArray]]] = [
            [] for _ in index.resolutions
        ]

    # -- helpers --------------------------------------------------------------------

    def _matching(self, rows: IntArray) -> BoolArray | None:
        """Rows that are live and of a wanted category; None when that is every row."""
        ok = None if self.ix._all_alive else self.ix._alive[rows]
        if self.cats is not None:
            wanted = np.isin(self.ix._cats[rows], self.cats)
            ok = wanted if ok is None else ok & wanted
        return ok

    def _collect(self, ids: IntArray, xyz: FloatArray, ok: BoolArray | None, *, counted: bool) -> None:
        """Check merchants one by one; keep those after the cursor; count them unless already counted."""
        c2 = chord2_to(xyz, self.point)
        inside = c2 <= self.max_c2
        if ok is not None:
            inside &= ok
        c2, ids = c2[inside], ids[inside]
        if not counted:
            self.total += len(c2)
        if self.after is not None:
            later = _after(c2, ids, self.after)
            c2, ids = c2[later], ids[later]
        self.found_c2.append(c2)
        self.found_ids.append(ids)

    def _collect_groups(self, level: _Level, groups: IntArray, *, counted: bool) -> None:
        rows = _ranges(level.offsets[groups], level.offsets[groups + 1])
        self._collect(self.ix._ids[rows], self.ix._xyz[rows], self._matching(rows), counted=counted)

    def _counts(self, depth: int, groups: IntArray) -> IntArray:
        level = self.ix._levels[depth]
        if depth == 0:
            counts = level.counts[groups]
            return counts.sum(axis=1) if self.cats is None else counts[:, self.cats].sum(axis=1)
        if self.cats is None:
            return level.counts[groups].astype(np.int64)
        lengths = level.offsets[groups + 1] - level.offsets[groups]
        rows = _ranges(level.offsets[groups], level.offsets[groups + 1])
        group_of_row = np.repeat(np.arange(len(groups)), lengths)
        wanted = self._matching(rows)  # a category filter is set here, so never None
        matched = np.ones(len(rows)) if wanted is None else wanted.astype(np.float64)
        return np.bincount(group_of_row, weights=matched, minlength=len(groups)).astype(np.int64)

    def _bounds(self, level: _Level, groups: IntArray) -> tuple[FloatArray, FloatArray]:
        centre = np.sqrt(chord2_to(level.centres[groups], self.point))
        rho = level.rho[groups]
        # nearest may come out negative (the point is inside the group): still a lower bound
        return centre - rho, centre + rho

    # -- the total ----------------------------------------------------------------

    def _classify(self, depth: int, groups: IntArray) -> None:
        level = self.ix._levels[depth]
        nearest, farthest = self._bounds(level, groups)
        meets = nearest <= self.radius + _EPS
        groups, nearest, farthest = groups[meets], nearest[meets], farthest[meets]
        inside = farthest <= self.radius - _EPS
        counts = self._counts(depth, groups[inside])
        self.total += int(counts.sum())
        self.inside[depth].append((groups[inside], nearest[inside], farthest[inside], counts))
        crossing = groups[~inside]
        if depth + 1 < len(self.ix._levels):
            children = _ranges(level.children[crossing], level.children[crossing + 1])
            self._classify(depth + 1, children)
        else:
            self._collect_groups(level, crossing, counted=False)

    # -- the page -----------------------------------------------------------------

    def _page(self) -> None:
        """Read just the inside groups that can hold the page's merchants."""
        levels = self.ix._levels
        pool: list[_PoolEntry] = []
        for depth, parts in enumerate(self.inside):
            if parts:
                groups, nearest, farthest, counts = (np.concatenate(p) for p in zip(*parts, strict=True))
                pool.append((depth, groups, nearest, farthest, counts))
        for depth in range(len(levels)):
            bound = self._page_bound(pool)
            next_pool: list[_PoolEntry] = []
            for d, groups, nearest, farthest, counts in pool:
                keep = (nearest <= bound + _EPS) & (farthest >= self.after_chord - _EPS)
                groups = groups[keep]
                if d > depth or not len(groups):
                    if len(groups):
                        next_pool.append((d, groups, nearest[keep], farthest[keep], counts[keep]))
                    continue
                if d == len(levels) - 1:
                    self._collect_groups(levels[d], groups, counted=True)
                    continue
                children = _ranges(levels[d].children[groups], levels[d].children[groups + 1])
                c_near, c_far = self._bounds(levels[d + 1], children)
                next_pool.append((d + 1, children, c_near, c_far, self._counts(d + 1, children)))
            pool = next_pool

    def _page_bound(self, pool: list[_PoolEntry]) -> float:
        """A chord within which at least `limit` merchants of the page surely lie."""
        # Only groups wholly after the cursor surely hold that many merchants of the page.
        farthest = [far for _, _, _, far, _ in pool]
        if self.after is None:
            counts = [cnt for _, _, _, _, cnt in pool]
        else:
            counts = [np.where(near > self.after_chord + _EPS, cnt, 0) for _, _, near, _, cnt in pool]
        bound = (
            _kth_upper_bound(np.concatenate(farthest), np.concatenate(counts), self.limit)
            if pool
            else math.inf
        )
        if bound == math.inf and self.found_c2:
            # Few merchants inside whole groups: the ones checked one by one bound it too.
            found = np.concatenate(self.found_c2)
            farthest.append(np.sqrt(found))
            counts.append(np.ones(len(found), dtype=np.int64))
            bound = _kth_upper_bound(np.concatenate(farthest), np.concatenate(counts), self.limit)
        return bound

    def run(self) -> NearbyHits:
        ov_ids, ov_xyz, ov_cats = self.ix._overlay_view()
        if len(ov_ids):
            wanted = None if self.cats is None else np.isin(ov_cats, self.cats)
            self._collect(ov_ids, ov_xyz, wanted, counted=False)
        if self.ix._levels and len(self.ix._levels[0].cells):
            self._classify(0, self.ix.coarse_groups(self.lat, self.lng, self.angle))
            self._page()
        c2_all = np.concatenate(self.found_c2) if self.found_c2 else np.empty(0)
        ids_all = np.concatenate(self.found_ids) if self.found_ids else np.empty(0, dtype=np.int64)
        if len(c2_all) > self.limit:
            # Only ties at the limit-th distance need the full (distance, id) sort.
            kth = np.partition(c2_all, self.limit - 1)[self.limit - 1]
            head = c2_all <= kth
            c2_all, ids_all = c2_all[head], ids_all[head]
        order = np.lexsort((ids_all, c2_all))[: self.limit]
        hits = list(map(Hit._make, zip(ids_all[order].tolist(), c2_all[order].tolist(), strict=True)))
        return NearbyHits(total=self.total, hits=hits)
