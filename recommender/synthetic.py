"""A synthetic town of habits, for tests and benchmarks: known structure, no real data.

Items sit on a grid; each user has a few favourite items that they revisit in a loop
(so "where people go next" and own habits carry signal) and sometimes explore a popular
item instead (so discovery has signal too). Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

METRES_PER_DEGREE = 111_195.0


@dataclass(frozen=True)
class Town:
    item_ids: IntArray
    lats: FloatArray
    lons: FloatArray
    users: IntArray  # one row per visit, in time order
    items: IntArray
    times: FloatArray

    def candidates_of(self, radius_m: float) -> object:
        """item id -> (item ids within radius_m, distances), by brute force (flat earth, small town)."""
        where = {int(i): k for k, i in enumerate(self.item_ids)}
        scale = np.cos(np.radians(self.lats.mean()))

        def candidates(item: int) -> tuple[IntArray, FloatArray]:
            k = where[item]
            dy = (self.lats - self.lats[k]) * METRES_PER_DEGREE
            dx = (self.lons - self.lons[k]) * METRES_PER_DEGREE * scale
            distances = np.hypot(dx, dy)
            inside = distances <= radius_m
            return self.item_ids[inside], distances[inside]

        return candidates


def town(
    users: int = 120,
    side: int = 8,
    visits_per_user: int = 40,
    seed: int = 0,
    first_item_id: int = 1,
    first_user_id: int = 1,
    start_s: float = 1_700_000_000.0,
) -> Town:
    rng = np.random.default_rng(seed)
    n_items = side * side
    item_ids = np.arange(first_item_id, first_item_id + n_items, dtype=np.int64)
    rows, cols = np.divmod(np.arange(n_items), side)
    lats = 60.17 + rows * 0.0018  # ~200 m apart
    lons = 24.93 + cols * 0.0036
    appeal = rng.pareto(1.5, n_items) + 0.1
    appeal /= appeal.sum()
    out_users, out_items, out_times = [], [], []
    for u in range(users):
        favourites = rng.choice(n_items, size=3, replace=False, p=appeal)
        t = start_s + rng.uniform(0, 86_400)
        for v in range(visits_per_user):
            habit = rng.random() < 0.75
            item = favourites[v % len(favourites)] if habit else rng.choice(n_items, p=appeal)
            t += rng.uniform(3_600, 3 * 86_400)
            out_users.append(first_user_id + u)
            out_items.append(item_ids[item])
            out_times.append(t)
    order = np.argsort(out_times, kind="stable")
    return Town(
        item_ids,
        lats,
        lons,
        np.asarray(out_users, dtype=np.int64)[order],
        np.asarray(out_items, dtype=np.int64)[order],
        np.asarray(out_times, dtype=np.float64)[order],
    )
