"""The offline evaluation protocol on check-ins: time split, cases, rankers, metrics.

Pure: the candidates of a case come from a function the caller supplies (the service's
own nearby index), and each ranker is a function of a case. See docs/recommender.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from recommender.metrics import summary

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


# (lat, lon-free) candidate source: origin venue id -> (venue ids, distances in metres).
CandidateSource = Callable[[int], tuple[IntArray, FloatArray]]


def build_cases(checkins: Checkins, cutoff: float, candidates: CandidateSource) -> Cases:
    """Steps 2 of the protocol: every test check-in becomes a case or a counted skip."""
    result = Cases()
    has_train = set(checkins.users[checkins.times < cutoff].tolist())
    last_venue: dict[int, int] = {}
    last_time: dict[int, float] = {}
    seen: dict[int, set[int]] = {}
    # Check-ins at the same instant are not "strictly earlier" than each other: a user's
    # previous venue is updated only once the time moves on.
    pending: list[tuple[int, int, float]] = []
    current = -np.inf
    for user, venue, time in zip(
        checkins.users.tolist(), checkins.venues.tolist(), checkins.times.tolist(), strict=True
    ):
        if time != current:
            for u, v, t in pending:
                last_venue[u], last_time[u] = v, t
                seen.setdefault(u, set()).add(v)
            pending.clear()
            current = time
        pending.append((user, venue, time))
        if time < cutoff:
            continue
        result.test_checkins += 1
        if user not in has_train:
            result.skipped["no_train_history"] += 1
            continue
        origin = last_venue.get(user)
        if origin is None:
            result.skipped["no_previous_checkin"] += 1
            continue
        ids, distances = candidates(origin)
        if venue not in set(ids.tolist()):
            result.skipped["outside_radius"] += 1
            continue
        if len(ids) < 2:
            result.skipped["fewer_than_2_candidates"] += 1
            continue
        discovery = venue not in seen.get(user, set())
        result.cases.append(Case(user, venue, time, origin, ids, distances, discovery))
    return result


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
