"""Exploration slots: merchants without history are not buried under those with it.

With share s, every round(1/s)-th position, starting half a period in (s = 0.1: the 6th,
16th, 26th, ...), is an exploration slot: it takes the best-ranked merchant without
history not yet placed, if any is left; every other position takes the best-ranked of
all not yet placed. Order among fresh merchants, and among the rest, is kept.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def interleave(
    order: npt.ArrayLike, fresh: npt.ArrayLike, share: float, places: int | None = None
) -> IntArray:
    """A permutation of ``order`` (positions, best first) with fresh ones in the slots; with
    ``places``, only its first that many places (the same as the permutation's).

    ``fresh[p]`` says whether position p of the candidates has no history.
    """
    ranked = np.asarray(order, dtype=np.int64)
    is_fresh = np.asarray(fresh, dtype=bool)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"exploration share {share} is outside 0..1")
    if places is not None:
        places = max(places, 0)
    if share == 0.0 or not is_fresh[ranked].any():
        return ranked[:places]
    period = max(1, round(1.0 / share))
    fresh_queue = ranked[is_fresh[ranked]].tolist()
    placed: set[int] = set()
    out: list[int] = []
    rest = iter(ranked.tolist())
    next_fresh = 0
    for slot in range(len(ranked) if places is None else min(places, len(ranked))):
        if slot % period == period // 2 and next_fresh < len(fresh_queue):
            while next_fresh < len(fresh_queue) and fresh_queue[next_fresh] in placed:
                next_fresh += 1
            if next_fresh < len(fresh_queue):
                pick = fresh_queue[next_fresh]
                next_fresh += 1
                placed.add(pick)
                out.append(pick)
                continue
        for p in rest:
            if p not in placed:
                placed.add(p)
                out.append(p)
                break
    return np.asarray(out, dtype=np.int64)
