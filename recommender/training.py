"""Training: interactions in, a Model out, tuned on validation windows of its own data.

The protocol of docs/recommender.md, applied to whatever window is given: the last 10 %
of the visits (by time) is the first validation window; signals are fitted on the visits
before it; every visit in it becomes a case (stand at the user's previous visit,
candidates within the radius, the visited one relevant). While the ranker's row budget
lasts, the 10 % before that window adds cases the same way (signals fitted before it),
up to validation_windows windows. The ranker learns from all those cases; then the
signals are refitted on the whole window (ALS continuing from the latest fit's factors).
A trial ranker trained without the last quarter of the most recent window's cases is
scored on that quarter: the held-out metrics reported. Reviews, when given, rate the items
as of each fit: only those written before it (ratings.py).

Work that does not wait on other work runs side by side, each on one thread, so that 2
cores are both busy without parallel regions waiting on each other: a window's signals
(ALS in compiled code, the GIL released) while its cases are built (Python and numpy),
then the trial ranker, the shipped ranker and the refit of the signals (LightGBM and ALS
release the GIL too). Results do not depend on it: every piece is deterministic alone.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from recommender.als import AlsModel, AlsParams
from recommender.evaluation import Case, Checkins, build_cases, case_rng, evenly, rank_of, train_cutoff
from recommender.features import COLUMN, History, features
from recommender.interactions import Weighting, interaction_matrix
from recommender.metrics import summary
from recommender.model import Model, columns_of, dense_table, unique_inverse
from recommender.nearby import CandidateSource, Listed, Nearby, NearbySource, nearby_of, sampled_positions
from recommender.ranker import Ranker, RankerParams, fit_ranker
from recommender.ratings import Categories, RatedItems, Reviews
from recommender.signals import FloatArray, IntArray, Signals, Visits

VISIT_KINDS = ("visit", "redemption")
# Below this many validation cases a learned combiner is noise: training refuses.
MIN_VALIDATION_CASES = 30

# item id -> the candidates within the radius, in the caller's ids: (ids, distances in
# metres), or a NearbySource that gives a case's few of many without listing them all
CandidatesOf = CandidateSource | NearbySource
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
    # A validation window with more visits is sampled evenly down to this many: a case
    # costs a lookup of its candidates and their features (foursquare-us: 14,900 a window).
    max_validation_visits: int = 12_000
    # Earlier windows of the same length add cases, as many (up to this) as there are
    # windows' worth of visits in validation_windows x max_validation_visits: four when a
    # window is small, one when it is sampled anyway (each window costs a fit of the
    # signals). foursquare-us: 3 windows; 8 windows of all their visits did no better.
    validation_windows: int = 4
    # The cases of all windows are sampled evenly down to about this many candidate rows
    # (while a tenth of it is left, another window may add cases): the ranker's fit costs
    # per row (100k users x 5M visits: 0.67 M rows, two fits in 5 s).
    max_validation_rows: int = 1_200_000
    # A case's candidates beyond this many are a random sample of the others (the visited
    # one kept): more cases in the budget. On foursquare-us, 100 gave +0.003 NDCG@10 at
    # 1 km, +0.005 at 2 km and +0.006 at 5 km over keeping them all (docs/recommender.md).
    max_case_candidates: int = 100

    def describe(self) -> dict[str, Any]:
        return {
            "als": asdict(self.als),
            "weighting": {**asdict(self.weighting), "kinds": dict(self.weighting.kinds)},
            "ranker": asdict(self.ranker),
            "validation_share": self.validation_share,
            "max_validation_visits": self.max_validation_visits,
            "max_validation_rows": self.max_validation_rows,
            "validation_windows": self.validation_windows,
            "max_case_candidates": self.max_case_candidates,
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
        return columns_of(self.item_ids, self._dense, items)

    @cached_property
    def _dense(self) -> npt.NDArray[np.int32] | None:
        return dense_table(self.item_ids)


@dataclass(frozen=True)
class _InColumns:
    """A Nearby of the caller's ids seen in the space's columns."""

    near: Nearby
    space: _Space

    def __len__(self) -> int:
        return len(self.near)

    def position(self, item: int) -> int:
        return self.near.position(int(self.space.item_ids[item]))

    def take(self, positions: IntArray) -> tuple[IntArray, FloatArray]:
        ids, distances = self.near.take(positions)
        return self.space.cols_of(np.asarray(ids, dtype=np.int64)), distances


@dataclass(frozen=True)
class _ColumnSource:
    """The caller's candidate source, asked and answered in the space's columns."""

    around: Callable[[int], Nearby]
    space: _Space

    def nearby(self, origin: int) -> Nearby:
        return _InColumns(self.around(int(self.space.item_ids[origin])), self.space)


def _fit_signals(
    data: Interactions,
    space: _Space,
    until: float,
    params: TrainParams,
    use_gpu: bool | None,
    als_start: AlsModel | None = None,
    rated: RatedItems | None = None,
) -> Signals:
    """Signals from the interactions (and reviews) strictly before ``until``, ALS on one
    thread (it runs beside other work, see train)."""
    keep = data.times < until
    users, items, kinds, times = space.rows[keep], space.cols[keep], data.kinds[keep], data.times[keep]
    matrix = interaction_matrix(users, items, kinds, times, until, space.shape, params.weighting)
    visit = np.isin(kinds, VISIT_KINDS)
    visits = Visits.of(users[visit], items[visit], times[visit])
    ratings = None if rated is None else rated.before(until)
    return Signals.fit(visits, matrix, params.als, use_gpu, als_start, als_threads=1, ratings=ratings)


def fewer_candidates(case: Case, limit: int, seed: int) -> Case:
    """The case with at most ``limit`` candidates: the visited one and a random sample of
    the others (in their distance order); what build_cases(limit=...) keeps."""
    if len(case.candidates) <= limit:
        return case
    listed = Listed(case.candidates, case.distances_m)
    at = listed.position(case.venue)
    keep = sampled_positions(len(listed), at, limit, case_rng(seed, case.user, case.time))
    return replace(case, candidates=case.candidates[keep], distances_m=case.distances_m[keep])


def _thinned(cases: list[Case], max_rows: int) -> list[Case]:
    """Cases sampled evenly (in time order) down to about max_rows candidates in all."""
    rows = sum(len(c.candidates) for c in cases)
    if rows <= max_rows:
        return cases
    return [cases[i] for i in evenly(len(cases), max(1, len(cases) * max_rows // rows)).tolist()]


def histories(users: IntArray, items: IntArray, times: FloatArray) -> dict[int, History]:
    """Each user's visits in time order (stable)."""
    if not len(users):
        return {}
    order = np.lexsort((np.arange(len(users)), times, users))
    users, items, times = users[order], items[order], times[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    return {int(users[s]): History(times[s:e], items[s:e]) for s, e in zip(starts, ends, strict=True)}


@dataclass(frozen=True)
class CaseFeatures:
    cases: list[Case]
    matrices: list[npt.NDArray[np.float32]]

    def __add__(self, other: CaseFeatures) -> CaseFeatures:
        return CaseFeatures(self.cases + other.cases, self.matrices + other.matrices)

    def __getitem__(self, part: slice) -> CaseFeatures:
        return CaseFeatures(self.cases[part], self.matrices[part])

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def rows(self) -> int:
        return sum(len(c.candidates) for c in self.cases)

    def relevant(self) -> list[npt.NDArray[np.bool_]]:
        return [c.candidates == c.venue for c in self.cases]

    def discovery(self) -> list[bool]:
        return [c.discovery for c in self.cases]

    def fit(self, params: RankerParams) -> Ranker:
        return fit_ranker(self.matrices, self.relevant(), self.discovery(), params)


def case_features(signals: Signals, cases: Sequence[Case], history: dict[int, History]) -> CaseFeatures:
    """features() of each case (users are rows of the signals), with the user's history
    strictly before the case."""
    matrices = [
        features(
            signals, c.user, history[c.user].before(c.time), c.origin, c.candidates, c.distances_m, c.time
        )
        for c in cases
    ]
    return CaseFeatures(list(cases), matrices)


def ndcg_of(part: CaseFeatures, score: Callable[[npt.NDArray[np.float32]], FloatArray]) -> dict[str, Any]:
    ranks = [rank_of(c, score(x)) for c, x in zip(part.cases, part.matrices, strict=True)]
    discovery = [r for r, c in zip(ranks, part.cases, strict=True) if c.discovery]
    return {"all": summary(ranks, 10), "discovery": summary(discovery, 10), "cases": len(ranks)}


@dataclass
class _Validation:
    """Cases of the validation windows, the most recent window first, with their features."""

    windows: list[CaseFeatures] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    latest_signals: Signals | None = None  # fitted before the most recent window

    @property
    def cases(self) -> int:
        return sum(len(w) for w in self.windows)


def _validation(
    data: Interactions,
    space: _Space,
    candidates_of: CandidatesOf,
    params: TrainParams,
    say: Progress,
    use_gpu: bool | None,
    rated: RatedItems | None,
) -> _Validation:
    """Cases from the last validation_share of the visits, with signals fitted before
    them; then from the same share before that, and so on, while the row budget lasts."""
    visit = np.isin(data.kinds, VISIT_KINDS)
    checkins = Checkins.of(space.rows[visit], space.cols[visit], data.times[visit])
    candidates = _ColumnSource(nearby_of(candidates_of), space)

    found = _Validation()
    budget, upper = params.max_validation_rows, np.inf
    # Small data gets more windows; big data, whose windows are sampled, one: each window
    # costs a fit of the signals, and the visits of validation_windows full windows are
    # the most there is use for.
    per_window = int((checkins.times >= train_cutoff(checkins.times, 1.0 - params.validation_share)).sum())
    most = params.validation_windows * params.max_validation_visits
    windows = min(params.validation_windows, max(1, most // max(per_window, 1)))
    for k in range(1, windows + 1):
        lower = train_cutoff(checkins.times, 1.0 - k * params.validation_share)
        if k > 1 and (budget < params.max_validation_rows // 10 or lower <= checkins.times[0]):
            break
        say(f"validation window {k}: signals before it, and cases")
        with ThreadPoolExecutor(max_workers=1) as pool:
            fitting = pool.submit(_fit_signals, data, space, lower, params, use_gpu, rated=rated)
            window = checkins.subset(checkins.times < upper)
            share = min(1.0, params.max_validation_visits / max(int((window.times >= lower).sum()), 1))
            built = build_cases(window, lower, candidates, share, params.max_case_candidates, seed=k)
            signals = fitting.result()
        found.latest_signals = found.latest_signals or signals
        say(f"validation window {k}: features")
        found.skipped += built.skipped
        cases = _thinned(built.cases, budget)
        mine = np.isin(checkins.users, [c.user for c in cases])
        history = histories(checkins.users[mine], checkins.venues[mine], checkins.times[mine])
        found.windows.append(case_features(signals, cases, history))
        budget -= found.windows[-1].rows
        upper = lower
    return found


def train(
    data: Interactions,
    candidates_of: CandidatesOf,
    params: TrainParams | None = None,
    progress: Progress | None = None,
    use_gpu: bool | None = None,
    reviews: Reviews | None = None,
    categories: Categories | None = None,
) -> Model:
    """A Model for the window ``data`` covers, its items rated by ``reviews`` (with a prior
    per category of ``categories``, if given); raises NotEnoughHistory on too little data."""
    params = params or TrainParams()
    say = progress or (lambda _: None)
    started = time.perf_counter()
    space = _Space.of(data)
    params = replace(params, als=params.als.within_budget(sum(space.shape)))
    visits = int(np.isin(data.kinds, VISIT_KINDS).sum())
    if visits < 2:
        raise NotEnoughHistory("no visits to learn from")
    rated = None
    if reviews is not None:
        # Reviews of items without interactions in the window rate nothing the model knows.
        in_columns = Reviews(space.cols_of(reviews.items), reviews.ratings, reviews.times)
        item_categories = None if categories is None else categories.of(space.item_ids)
        rated = RatedItems(in_columns, len(space.item_ids), item_categories)
    validation = _validation(data, space, candidates_of, params, say, use_gpu, rated)
    if validation.cases < MIN_VALIDATION_CASES:
        raise NotEnoughHistory(
            f"{validation.cases} validation cases (a visit after a visit within the radius); "
            f"at least {MIN_VALIDATION_CASES} are needed"
        )

    say(f"ranker on {validation.cases:,} validation cases, and signals on the whole window")
    latest, *older = validation.windows
    cut = len(latest) * 3 // 4
    fit_part, held_out = sum(older, latest[:cut]), latest[cut:]
    assert validation.latest_signals is not None
    with ThreadPoolExecutor(max_workers=3) as pool:
        trial_fit = pool.submit(fit_part.fit, params.ranker)
        shipped_fit = pool.submit((fit_part + held_out).fit, params.ranker)
        # ALS continues from the last window's factors: the same users and items, 90 % of the data.
        refit = pool.submit(
            _fit_signals, data, space, np.inf, params, use_gpu, validation.latest_signals.als, rated
        )
        metrics = {
            "held_out": ndcg_of(held_out, trial_fit.result().scores),
            "held_out_distance": ndcg_of(held_out, lambda x: x[:, COLUMN["closeness"]].astype(np.float64)),
            "skipped": dict(validation.skipped),
        }
        ranker, signals = shipped_fit.result(), refit.result()
    meta = {
        "window": {"from": float(data.times.min()), "to": float(data.times.max())},
        "interactions": len(data),
        "visits": visits,
        "users": len(space.user_ids),
        "items": len(space.item_ids),
        "validation_cases": validation.cases,
        "validation_windows": len(validation.windows),
        "validation_rows": sum(w.rows for w in validation.windows),
        "reviews": 0 if rated is None else int((rated.reviews.items >= 0).sum()),
        "params": params.describe(),
        "metrics": metrics,
        "train_seconds": time.perf_counter() - started,
    }
    return Model(signals, ranker, space.user_ids, space.item_ids, meta)
