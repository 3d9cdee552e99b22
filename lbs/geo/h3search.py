"""One radius query over a NearbyIndex: the exact total, then one page.

Distances between bounds are chord lengths through the unit sphere: a true metric, so
the triangle inequality holds and no trigonometry is needed per group. A query of
radius chord ``r`` classifies a group whose centre lies at chord ``d``:

* ``d + rho <= r``: all of it is inside: counted from its counts, no merchant visited;
* ``d - rho > r``: all of it is outside: skipped;
* otherwise it crosses the circle: its child groups are classified in turn, and at the
  finest level each merchant is checked.

So per-merchant work is confined to a band about two finest-cell radii wide.

A page of the nearest ``limit`` after a cursor needs only a few groups: inside groups'
counts and farthest distances give an upper bound on the limit-th distance; groups
whose nearest possible point is beyond it are dropped; the rest are refined level by
level, and only the finest survivors are read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from lbs.geo.distance import EARTH_RADIUS_M, FloatArray, chord2_to, chord2_to_m, m_to_chord2, point_to_xyz
from lbs.geo.h3levels import EPS, BoolArray, IntArray, Level, ranges

if TYPE_CHECKING:
    from lbs.geo.h3index import NearbyIndex


class Hit(NamedTuple):
    id: int
    chord2: float

    @property
    def distance_m(self) -> float:
        return float(chord2_to_m(self.chord2))


@dataclass(frozen=True)
class NearbyHits:
    """A page: the total within the radius, and the page's ids and chord2, nearest first."""

    total: int
    ids: IntArray
    chord2: FloatArray

    @cached_property
    def hits(self) -> list[Hit]:
        """The page as Hit tuples (the arrays are cheaper to read for long pages)."""
        return list(map(Hit._make, zip(self.ids.tolist(), self.chord2.tolist(), strict=True)))


@dataclass(frozen=True)
class Cursor:
    """Position after the last hit of a page: results continue strictly after (chord2, id)."""

    chord2: float
    id: int


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
PoolEntry = tuple[int, IntArray, FloatArray, FloatArray, IntArray]


class RadiusQuery:
    """The total, then the page, of one query; built per query."""

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

    def _collect_groups(self, level: Level, groups: IntArray, *, counted: bool) -> None:
        rows = ranges(level.offsets[groups], level.offsets[groups + 1])
        self._collect(self.ix._ids[rows], self.ix._xyz[rows], self._matching(rows), counted=counted)

    def _counts(self, depth: int, groups: IntArray) -> IntArray:
        level = self.ix._levels[depth]
        if depth == 0:
            counts = level.counts[groups]
            return counts.sum(axis=1) if self.cats is None else counts[:, self.cats].sum(axis=1)
        if self.cats is None:
            return level.counts[groups].astype(np.int64)
        lengths = level.offsets[groups + 1] - level.offsets[groups]
        rows = ranges(level.offsets[groups], level.offsets[groups + 1])
        group_of_row = np.repeat(np.arange(len(groups)), lengths)
        wanted = self._matching(rows)  # a category filter is set here, so never None
        matched = np.ones(len(rows)) if wanted is None else wanted.astype(np.float64)
        return np.bincount(group_of_row, weights=matched, minlength=len(groups)).astype(np.int64)

    def _bounds(self, level: Level, groups: IntArray) -> tuple[FloatArray, FloatArray]:
        centre = np.sqrt(chord2_to(level.centres[groups], self.point))
        rho = level.rho[groups]
        # nearest may come out negative (the point is inside the group): still a lower bound
        return centre - rho, centre + rho

    # -- the total ----------------------------------------------------------------

    def _classify(self, depth: int, groups: IntArray) -> None:
        level = self.ix._levels[depth]
        nearest, farthest = self._bounds(level, groups)
        meets = nearest <= self.radius + EPS
        groups, nearest, farthest = groups[meets], nearest[meets], farthest[meets]
        inside = farthest <= self.radius - EPS
        counts = self._counts(depth, groups[inside])
        self.total += int(counts.sum())
        self.inside[depth].append((groups[inside], nearest[inside], farthest[inside], counts))
        crossing = groups[~inside]
        if depth + 1 < len(self.ix._levels):
            children = ranges(level.children[crossing], level.children[crossing + 1])
            self._classify(depth + 1, children)
        else:
            self._collect_groups(level, crossing, counted=False)

    # -- the page -----------------------------------------------------------------

    def _page(self) -> None:
        """Read just the inside groups that can hold the page's merchants."""
        levels = self.ix._levels
        pool: list[PoolEntry] = []
        for depth, parts in enumerate(self.inside):
            if parts:
                groups, nearest, farthest, counts = (np.concatenate(p) for p in zip(*parts, strict=True))
                pool.append((depth, groups, nearest, farthest, counts))
        for depth in range(len(levels)):
            bound = self._page_bound(pool)
            next_pool: list[PoolEntry] = []
            for d, groups, nearest, farthest, counts in pool:
                keep = (nearest <= bound + EPS) & (farthest >= self.after_chord - EPS)
                groups = groups[keep]
                if d > depth or not len(groups):
                    if len(groups):
                        next_pool.append((d, groups, nearest[keep], farthest[keep], counts[keep]))
                    continue
                if d == len(levels) - 1:
                    self._collect_groups(levels[d], groups, counted=True)
                    continue
                children = ranges(levels[d].children[groups], levels[d].children[groups + 1])
                c_near, c_far = self._bounds(levels[d + 1], children)
                next_pool.append((d + 1, children, c_near, c_far, self._counts(d + 1, children)))
            pool = next_pool

    def _page_bound(self, pool: list[PoolEntry]) -> float:
        """A chord within which at least `limit` merchants of the page surely lie."""
        # Only groups wholly after the cursor surely hold that many merchants of the page.
        farthest = [far for _, _, _, far, _ in pool]
        if self.after is None:
            counts = [cnt for _, _, _, _, cnt in pool]
        else:
            counts = [np.where(near > self.after_chord + EPS, cnt, 0) for _, _, near, _, cnt in pool]
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

    def _classified(self) -> bool:
        """The overlay checked and the tree classified; False when the tree is empty."""
        ov_ids, ov_xyz, ov_cats = self.ix._overlay_view()
        if len(ov_ids):
            wanted = None if self.cats is None else np.isin(ov_cats, self.cats)
            self._collect(ov_ids, ov_xyz, wanted, counted=False)
        if self.ix._levels and len(self.ix._levels[0].cells):
            self._classify(0, self.ix.coarse_groups(self.lat, self.lng, self.angle))
            return True
        return False

    def _found(self) -> tuple[FloatArray, IntArray]:
        c2 = np.concatenate(self.found_c2) if self.found_c2 else np.empty(0)
        ids = np.concatenate(self.found_ids) if self.found_ids else np.empty(0, dtype=np.int64)
        return c2, ids

    def every(self) -> tuple[IntArray, FloatArray]:
        """Every merchant within the radius as arrays (ids, chord2), nearest first, ties by id:
        the inside groups are read whole, with no page bound (for bulk callers)."""
        if self._classified():
            for depth, parts in enumerate(self.inside):
                for groups, _, _, _ in parts:
                    self._collect_groups(self.ix._levels[depth], groups, counted=True)
        c2_all, ids_all = self._found()
        order = np.lexsort((ids_all, c2_all))
        return ids_all[order], c2_all[order]

    def run(self) -> NearbyHits:
        if self._classified():
            self._page()
        c2_all, ids_all = self._found()
        if len(c2_all) > self.limit:
            # Only ties at the limit-th distance need the full (distance, id) sort.
            kth = np.partition(c2_all, self.limit - 1)[self.limit - 1]
            head = c2_all <= kth
            c2_all, ids_all = c2_all[head], ids_all[head]
        order = np.lexsort((ids_all, c2_all))[: self.limit]
        return NearbyHits(total=self.total, ids=ids_all[order], chord2=c2_all[order])
