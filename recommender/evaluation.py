"""The offline evaluation protocol on check-ins: time split, cases, rankers, metrics.

Pure: the candidates of a case come from a function the caller supplies (the service's
own nearby index), and each ranker is a function of a case. See docs/recommender.md.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from recommender.metrics import summary
from recommender.nearby import CandidateSource, NearbySource, nearby_of, sampled_positions

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Checkins:
    """Check-ins sorted by time (stable, so equal times keep file order)."""

    users: IntArray
    venues: IntArray
    times: FloatArray

    @classmethod
    def of(cls, users: npt.ArrayLike, venues: npt.ArrayLike, times: npt.ArrayLike) -> Checkins:
        order = np.argsort(np.asarray(times, dtype=np.float64), kind="stable")
        return cls(
            np.asarray(users, dtype=np.int64)[order],
            np.asarray(venues, dtype=np.int64)[order],
            np.asarray(times, dtype=np.float64)[order],
        )

    def __len__(self) -> int:
        return len(self.times)

    def subset(self, mask: npt.NDArray[np.bool_]) -> Checkins:
        return Checkins(self.users[mask], self.venues[mask], self.times[mask])


def train_cutoff(times: FloatArray, quantile: float = 0.8) -> float:
    """Train is every check-in strictly before this time; test is the rest."""
    return float(np.quantile(times, quantile))


@dataclass(frozen=True)
class Case:
    """A test check-in: ``user`` stood at ``origin`` and went to ``venue`` at ``time``."""

    user: int
    venue: int
    time: float
    origin: int
    candidates: IntArray  # venue ids within the radius of origin, origin included
    distances_m: FloatArray  # from origin, aligned with candidates
    discovery: bool  # the user had never checked in at venue before time


@dataclass
class Cases:
    cases: list[Case] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    test_checkins: int = 0


def _previous_venue(checkins: Checkins) -> IntArray:
    """Each check-in's user's venue at the latest earlier instant (the last of several
    there in order), or -1: check-ins at the same instant are not "strictly earlier"."""
    n = len(checkins)
    by_user = np.argsort(checkins.users, kind="stable")  # time order kept per user
    users, times = checkins.users[by_user], checkins.times[by_user]
    instant_starts = np.r_[True, (users[1:] != users[:-1]) | (times[1:] != times[:-1])]
    before = np.maximum.accumulate(np.where(instant_starts, np.arange(n), 0)) - 1
    same_user = (before >= 0) & (users[np.maximum(before, 0)] == users)
    previous = np.full(n, -1, dtype=np.int64)
    previous[by_user] = np.where(same_user, checkins.venues[by_user][np.maximum(before, 0)], -1)
    return previous


def _first_time_at(checkins: Checkins) -> FloatArray:
    """For each check-in, when its user first checked in at its venue."""
    span = int(checkins.venues.max(initial=0)) + 1
    pairs = checkins.users * span + checkins.venues
    by_pair = np.argsort(pairs, kind="stable")  # check-ins are in time order
    sorted_pairs = pairs[by_pair]
    run_starts = np.r_[True, sorted_pairs[1:] != sorted_pairs[:-1]]
    first = np.maximum.accumulate(np.where(run_starts, np.arange(len(pairs)), 0))
    out = np.empty(len(pairs))
    out[by_pair] = checkins.times[by_pair][first]
    return out


def evenly(n: int, m: int) -> IntArray:
    """m of the positions 0..n-1, evenly spread, the first included (all if m >= n)."""
    m = max(0, min(m, n))
    return (np.arange(m, dtype=np.int64) * n) // max(m, 1)


def build_cases(
    checkins: Checkins,
    cutoff: float,
    candidates: CandidateSource | NearbySource,
    share: float = 1.0,
    limit: int | None = None,
    seed: int = 0,
) -> Cases:
    """Steps 2 of the protocol: every test check-in becomes a case or a counted skip.

    ``share`` < 1 keeps only that share of the test check-ins, evenly spread (training on
    a big window samples its validation cases this way; the evaluation protocol keeps
    all). Sampled-out check-ins still count as a later one's previous check-in and as a
    visit for discovery. With ``limit``, a case of more candidates keeps the visited one
    and a random limit - 1 of the others, in the source's order (see fewer_candidates).
    """
    result = Cases()
    start = int(np.searchsorted(checkins.times, cutoff, side="left"))  # test: from here on
    result.test_checkins = len(checkins) - start
    test = np.arange(start, len(checkins))
    kept = np.zeros(len(test), dtype=bool)
    kept[evenly(len(test), math.ceil(len(test) * share - 1e-9))] = True
    result.skipped["sampled_out"] = int((~kept).sum())
    test = test[kept]
    has_train = np.isin(checkins.users[test], checkins.users[:start])
    result.skipped["no_train_history"] = int((~has_train).sum())
    test = test[has_train]
    origins = _previous_venue(checkins)[test]
    result.skipped["no_previous_checkin"] = int((origins < 0).sum())  # none with train history
    test, origins = test[origins >= 0], origins[origins >= 0]
    discovery = _first_time_at(checkins)[test] >= checkins.times[test]
    around = nearby_of(candidates)
    for i, origin, new in zip(test.tolist(), origins.tolist(), discovery.tolist(), strict=True):
        user, venue, time = int(checkins.users[i]), int(checkins.venues[i]), float(checkins.times[i])
        near = around(origin)
        at = near.position(venue)
        if at < 0:
            result.skipped["outside_radius"] += 1
        elif len(near) < 2:
            result.skipped["fewer_than_2_candidates"] += 1
        else:
            if limit is not None and len(near) > limit:
                positions = sampled_positions(len(near), at, limit, case_rng(seed, user, time))
            else:
                positions = np.arange(len(near))
            ids, distances = near.take(positions)
            result.cases.append(Case(user, venue, time, origin, ids, distances, new))
    result.skipped += Counter()  # drop the zero counts
    return result


def case_rng(seed: int, user: int, time: float) -> np.random.Generator:
    """The generator that samples a case's candidates: the same case, the same sample."""
    return np.random.default_rng([seed, user, int(time)])


Ranker = Callable[[Case], FloatArray]  # one score per candidate, higher first


def rank_of(case: Case, scores: FloatArray) -> int:
    """0-based rank of the visited venue: by score descending, ties by venue id."""
    order = np.lexsort((case.candidates, -np.asarray(scores, dtype=np.float64)))
    position = np.nonzero(case.candidates[order] == case.venue)[0]
    return int(position[0])


def evaluate(cases: Iterable[Case], rankers: Mapping[str, Ranker], k: int = 10) -> dict[str, Any]:
    """Metrics per ranker over all cases and over the discovery cases, in result.json's shape."""
    ranks: dict[str, list[int]] = {name: [] for name in rankers}
    discovery: dict[str, list[int]] = {name: [] for name in rankers}
    n = n_discovery = 0
    for case in cases:
        n += 1
        n_discovery += case.discovery
        for name, ranker in rankers.items():
            rank = rank_of(case, ranker(case))
            ranks[name].append(rank)
            if case.discovery:
                discovery[name].append(rank)
    return {
        "cases": n,
        "methods": {name: summary(r, k) for name, r in ranks.items()},
        "discovery": {
            "cases": n_discovery,
            "methods": {name: summary(r, k) for name, r in discovery.items()},
        },
    }
