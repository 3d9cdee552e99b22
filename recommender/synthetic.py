"""A synthetic town of habits, for tests and benchmarks: known structure, no real data.

Items sit on a grid; each user has three favourite items near each other that they visit
in turn (so "where people go next" and own habits carry signal) and a quarter of the time
visit a popular item anywhere instead (so discovery has signal too). Deterministic for a
seed; vectorised, so millions of visits take seconds.
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
    # Each user's three favourites, near each other: a home item and two within ~3 cells.
    home = rng.choice(n_items, size=users, p=appeal)
    home_row, home_col = np.divmod(home, side)
    steps = rng.integers(-3, 4, size=(users, 2, 2))
    near_rows = np.clip(home_row[:, None] + steps[:, :, 0], 0, side - 1)
    near_cols = np.clip(home_col[:, None] + steps[:, :, 1], 0, side - 1)
    favourites = np.column_stack([home, near_rows * side + near_cols])
    n = users * visits_per_user
    user_of = np.repeat(np.arange(users), visits_per_user)
    turn = np.tile(np.arange(visits_per_user), users)
    habit = rng.random(n) < 0.75
    item = np.where(habit, favourites[user_of, turn % 3], rng.choice(n_items, size=n, p=appeal))
    gaps = rng.uniform(3_600, 3 * 86_400, size=(users, visits_per_user))
    times = start_s + rng.uniform(0, 86_400, size=(users, 1)) + np.cumsum(gaps, axis=1)
    out_users = first_user_id + user_of
    out_items = item_ids[item]
    out_times = times.ravel()
    order = np.argsort(out_times, kind="stable")
    return Town(
        item_ids,
        lats,
        lons,
        out_users.astype(np.int64)[order],
        out_items.astype(np.int64)[order],
        out_times.astype(np.float64)[order],
    )
