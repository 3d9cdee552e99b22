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


def build_cases(checkins: Checkins, cutoff: float, candidates: CandidateSource, every: int = 1) -> Cases:
    """Steps 2 of the protocol: every test check-in becomes a case or a counted skip.

    ``every`` > 1 keeps only every so-many-th test check-in (training on a big window
    samples its validation cases this way; the evaluation protocol keeps all).
    """
    result = Cases()
    # Check-ins are sorted by time, so train is a prefix: its state (each user's last
    # check-in, the (user, venue) pairs seen) is read off it at once.
    start = int(np.searchsorted(checkins.times, cutoff, side="left"))
    users, venues = checkins.users[:start], checkins.venues[:start]
    has_train = set(np.unique(users).tolist())
    span = int(checkins.venues.max(initial=0)) + 1
    last_users, last_at = np.unique(users[::-1], return_index=True)
    last_venue: dict[int, int] = dict(zip(last_users.tolist(), venues[::-1][last_at].tolist(), strict=True))
    seen: set[int] = set(np.unique(users * span + venues).tolist())
    # Check-ins at the same instant are not "strictly earlier" than each other: a user's
    # previous venue is updated only once the time moves on.
    pending: list[tuple[int, int]] = []
    current = -np.inf
    for user, venue, time in zip(
        checkins.users[start:].tolist(),
        checkins.venues[start:].tolist(),
        checkins.times[start:].tolist(),
        strict=True,
    ):
        if time != current:
            for u, v in pending:
                last_venue[u] = v
                seen.add(u * span + v)
            pending.clear()
            current = time
        pending.append((user, venue))
        result.test_checkins += 1
        if (result.test_checkins - 1) % every:
            result.skipped["sampled_out"] += 1
            continue
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
        discovery = user * span + venue not in seen
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
