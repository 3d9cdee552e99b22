"""Training: interactions in, a Model out, tuned on a validation split of its own window.

The protocol of docs/recommender.md, applied to whatever window is given: the last 10 %
of the visits (by time) is validation; signals are fitted on the first 90 %; every
validation visit becomes a case (stand at the user's previous visit, candidates within
the radius, the visited one relevant); the ranker learns from those cases; then the
signals are refitted on the whole window (ALS continuing from the first fit's factors).
The first three quarters of the validation cases also train a ranker scored on the last
quarter: the held-out metrics reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from recommender.als import AlsModel, AlsParams
from recommender.evaluation import Case, Checkins, build_cases, rank_of, train_cutoff
from recommender.features import COLUMN, History, features
from recommender.interactions import Weighting, interaction_matrix
from recommender.metrics import summary
from recommender.model import Model, columns_in, unique_inverse
from recommender.ranker import RankerParams, fit_ranker
from recommender.signals import FloatArray, IntArray, Signals, Visits

VISIT_KINDS = ("visit", "redemption")
# Below this many validation cases a learned combiner is noise: training refuses.
MIN_VALIDATION_CASES = 30

# item id -> (ids within the radius, their distances in metres), in the caller's ids
CandidatesOf = Callable[[int], tuple[IntArray, FloatArray]]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Interactions:
    """Events in the caller's ids: who, what, which kind, when (unix seconds)."""

    users: IntArray
    items: IntArray
    kinds: npt.NDArray[np.str_]
    times: FloatArray

    @classmethod
    def visits_only(cls, users: npt.ArrayLike, items: npt.ArrayLike, times: npt.ArrayLike) -> Interactions:
        u = np.asarray(users, dtype=np.int64)
        return cls(u, np.asarray(items, dtype=np.int64), np.full(len(u), "visit"), np.asarray(times, float))

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True)
class TrainParams:
    als: AlsParams = field(default_factory=AlsParams)
    weighting: Weighting = field(default_factory=Weighting)
    ranker: RankerParams = field(default_factory=RankerParams)
    validation_share: float = 0.1
    # A bigger validation window is sampled evenly down to about this many visits
    # (foursquare-us has about 15,000, all kept): cases cost features per candidate.
    max_validation_visits: int = 20_000
    # ... and its cases sampled evenly down to about this many candidate rows: the
    # ranker's fit costs per row (foursquare-us: 0.3 M at 1 km, 1.1 M at 2 km, 4 M at 5 km).
    max_validation_rows: int = 1_200_000

    def describe(self) -> dict[str, Any]:
        return {
            "als": asdict(self.als),
            "weighting": {**asdict(self.weighting), "kinds": dict(self.weighting.kinds)},
            "ranker": asdict(self.ranker),
            "validation_share": self.validation_share,
            "max_validation_visits": self.max_validation_visits,
            "max_validation_rows": self.max_validation_rows,
        }


class NotEnoughHistory(ValueError):
    """Too few visits with a previous visit nearby to learn a ranking from."""


@dataclass(frozen=True)
class _Space:
    """The window's users and items, in ascending id order: rows and columns; and each
    interaction's row and column."""

    user_ids: IntArray
    item_ids: IntArray
    rows: IntArray
    cols: IntArray

    @classmethod
    def of(cls, data: Interactions) -> _Space:
        user_ids, rows = unique_inverse(data.users)
        item_ids, cols = unique_inverse(data.items)
        return cls(user_ids, item_ids, rows, cols)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.item_ids)

    def cols_of(self, items: IntArray) -> IntArray:
        return columns_in(self.item_ids, items)


def _fit_signals(
    data: Interactions,
    space: _Space,
    until: float,
    params: TrainParams,
    use_gpu: bool | None,
    als_start: AlsModel | None = None,
) -> Signals:
    """Signals from the interactions strictly before ``until``."""
    keep = data.times < until
    users, items, kinds, times = space.rows[keep], space.cols[keep], data.kinds[keep], data.times[keep]
    matrix = interaction_matrix(users, items, kinds, times, until, space.shape, params.weighting)
    visit = np.isin(kinds, VISIT_KINDS)
    visits = Visits.of(users[visit], items[visit], times[visit])
    return Signals.fit(visits, matrix, params.als, use_gpu, als_start)


def _thinned(cases: list[Case], max_rows: int) -> list[Case]:
    """Cases sampled evenly (in time order) down to about max_rows candidates in all."""
    rows = sum(len(c.candidates) for c in cases)
    if rows <= max_rows:
        return cases
    keep = np.unique(np.linspace(0, len(cases) - 1, max(1, len(cases) * max_rows // rows)).round())
    return [cases[int(i)] for i in keep]


def histories(users: IntArray, items: IntArray, times: FloatArray) -> dict[int, History]:
    """Each user's visits in time order (stable)."""
    order = np.lexsort((np.arange(len(users)), times, users))
    users, items, times = users[order], items[order], times[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    return {int(users[s]): History(times[s:e], items[s:e]) for s, e in zip(starts, ends, strict=True)}


@dataclass(frozen=True)
class CaseFeatures:
    cases: list[Case]
    matrices: list[npt.NDArray[np.float32]]

    def relevant(self) -> list[npt.NDArray[np.bool_]]:
        return [c.candidates == c.venue for c in self.cases]

    def discovery(self) -> list[bool]:
        return [c.discovery for c in self.cases]


def case_features(
    signals: Signals, user_rows: dict[int, int], cases: Sequence[Case], history: dict[int, History]
) -> CaseFeatures:
    """features() of each case, with the user's history strictly before the case."""
    matrices = [
        features(
            signals,
            user_rows.get(c.user),
            history[c.user].before(c.time),
            c.origin,
            c.candidates,
            c.distances_m,
            c.time,
        )
        for c in cases
    ]
    return CaseFeatures(list(cases), matrices)


def ndcg_of(part: CaseFeatures, score: Callable[[npt.NDArray[np.float32]], FloatArray]) -> dict[str, Any]:
    ranks = [rank_of(c, score(x)) for c, x in zip(part.cases, part.matrices, strict=True)]
    discovery = [r for r, c in zip(ranks, part.cases, strict=True) if c.discovery]
    return {"all": summary(ranks, 10), "discovery": summary(discovery, 10), "cases": len(ranks)}


def train(
    data: Interactions,
    candidates_of: CandidatesOf,
    params: TrainParams | None = None,
    progress: Progress | None = None,
    use_gpu: bool | None = None,
) -> Model:
    """A Model for the window ``data`` covers; raises NotEnoughHistory on too little data."""
    params = params or TrainParams()
    say = progress or (lambda _: None)
    started = time.perf_counter()
    space = _Space.of(data)
    visit = np.isin(data.kinds, VISIT_KINDS)
    if visit.sum() < 2:
        raise NotEnoughHistory("no visits to learn from")
    visit_times = data.times[visit]
    until = train_cutoff(visit_times, 1.0 - params.validation_share)

    say("signals on the first 90 % of the window")
    early = _fit_signals(data, space, until, params, use_gpu)
    users, items = space.rows[visit], space.cols[visit]

    mapped: dict[int, tuple[IntArray, FloatArray]] = {}

    def candidates(origin: int) -> tuple[IntArray, FloatArray]:
        if origin not in mapped:
            ids, distances = candidates_of(int(space.item_ids[origin]))
            mapped[origin] = (space.cols_of(np.asarray(ids, dtype=np.int64)), distances)
        return mapped[origin]

    say("validation cases")
    every = max(1, -(-int((visit_times >= until).sum()) // params.max_validation_visits))
    found = build_cases(Checkins.of(users, items, visit_times), until, candidates, every)
    if len(found.cases) < MIN_VALIDATION_CASES:
        raise NotEnoughHistory(
            f"{len(found.cases)} validation cases (a visit after a visit within the radius); "
            f"at least {MIN_VALIDATION_CASES} are needed"
        )
    found.cases = _thinned(found.cases, params.max_validation_rows)
    rows = {u: u for u in range(len(space.user_ids))}
    of_cases = np.isin(users, [c.user for c in found.cases])
    history = histories(users[of_cases], items[of_cases], visit_times[of_cases])
    validation = case_features(early, rows, found.cases, history)

    say(f"ranker on {len(found.cases):,} validation cases")
    cut = len(found.cases) * 3 // 4
    fit_part = CaseFeatures(validation.cases[:cut], validation.matrices[:cut])
    held_out = CaseFeatures(validation.cases[cut:], validation.matrices[cut:])
    trial = fit_ranker(fit_part.matrices, fit_part.relevant(), fit_part.discovery(), params.ranker)
    metrics = {
        "held_out": ndcg_of(held_out, trial.scores),
        "held_out_distance": ndcg_of(held_out, lambda x: x[:, COLUMN["closeness"]].astype(np.float64)),
        "skipped": dict(found.skipped),
    }
    ranker = fit_ranker(validation.matrices, validation.relevant(), validation.discovery(), params.ranker)

    say("signals on the whole window")
    # ALS continues from the first fit's factors: the same users and items, 90 % of the data.
    signals = _fit_signals(data, space, np.inf, params, use_gpu, als_start=early.als)
    meta = {
        "window": {"from": float(data.times.min()), "to": float(data.times.max())},
        "interactions": len(data),
        "visits": int(visit.sum()),
        "users": len(space.user_ids),
        "items": len(space.item_ids),
        "validation_cases": len(found.cases),
        "validation_rows": sum(len(c.candidates) for c in found.cases),
        "params": params.describe(),
        "metrics": metrics,
        "train_seconds": time.perf_counter() - started,
    }
    return Model(signals, ranker, space.user_ids, space.item_ids, meta)
