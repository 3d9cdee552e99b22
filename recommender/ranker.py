"""The combiner: LightGBM LambdaRank over the features, each constrained to its direction.

Trained on the cases of a validation split (one group per case: the candidates, the
visited one relevant), with the discovery cases weighted up so that a ranker that only
replays habits is penalised. Monotone constraints (features.DIRECTION) keep every
feature's effect in its documented direction, which the property tests check and which
the reasons shown to users rely on.

A ranker reads the features it was trained on, by name (LightGBM keeps them): one trained
before a feature existed (a saved model) or without it (RankerParams.without, the
evaluation's ablations) scores the full features() matrix all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import lightgbm
import numpy as np
import numpy.typing as npt

from recommender.features import COLUMN, DIRECTION, FEATURES


@dataclass(frozen=True)
class RankerParams:
    # Chosen on foursquare-us at 1, 2 and 5 km (docs/recommender.md): 2.5 x keeps the
    # discovery cases above the best baseline at every radius for under 0.5 % overall.
    discovery_weight: float = 2.5
    # 60 trees at rate 0.15 rank within 0.001 NDCG@10 of 200 at 0.05 at 1 km and score
    # 500 candidates in a quarter of the time (0.5 ms on one thread); 30 trees at 0.25
    # halve that again but lose 0.003 at 1 km, where the 1.10 x margin is thinnest.
    rounds: int = 60
    leaves: int = 15
    learning_rate: float = 0.15
    min_cases_in_leaf: int = 50
    seed: int = 1
    # One thread a fit: training runs its two fits side by side, which on 2 cores beats
    # one after the other on two threads each, and keeps its pace when other processes
    # take a core (LightGBM's many short parallel regions then wait on every switch).
    # The trees are the same on any number of threads (deterministic).
    threads: int = 1
    # Features the ranker leaves out (an ablation: "the ranking without ratings").
    without: tuple[str, ...] = ()

    def features(self) -> list[str]:
        """The features the ranker is trained on, in FEATURES' order."""
        unknown = set(self.without) - set(FEATURES)
        if unknown:
            raise ValueError(f"not features: {sorted(unknown)}")
        return [f for f in FEATURES if f not in self.without]


# Scoring cascade (Ranker.scores): the first trees pick this many rows for all the trees.
# On foursquare-us, 6 first trees rank as 10 did (NDCG@10 within 0.0001 at 1 and 5 km).
CASCADE_TREES = 6
CASCADE_KEEP = 50


def _columns(names: list[str]) -> npt.NDArray[np.int64] | None:
    """Positions of the named features in a features() row (None: all, in order)."""
    if names == list(FEATURES):
        return None
    unknown = set(names) - set(FEATURES)
    if unknown:
        raise ValueError(f"the ranker reads features this code does not make: {sorted(unknown)}")
    return np.array([COLUMN[name] for name in names], dtype=np.int64)


@dataclass(frozen=True)
class Ranker:
    booster: lightgbm.Booster
    params: RankerParams
    # Which columns of a features() matrix the booster reads (None: all of them).
    columns: npt.NDArray[np.int64] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", _columns(list(self.booster.feature_name())))

    def scores(
        self, x: npt.NDArray[np.float32], boost: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """One score per row of a features() matrix, plus ``boost`` if given; higher first.

        A cascade, when there are more than CASCADE_KEEP rows: the first CASCADE_TREES
        trees score every row; the CASCADE_KEEP best go on through the rest of the trees;
        the others keep their first-stage order, below all of those.
        """
        extra = np.zeros(len(x)) if boost is None else np.asarray(boost, dtype=np.float64)
        if len(x) == 0:
            return np.empty(0)
        if len(x) <= CASCADE_KEEP or self.booster.num_trees() <= CASCADE_TREES:
            return self._predict(x, 0, None) + extra
        first = self._predict(x, 0, CASCADE_TREES) + extra
        keep = np.argpartition(-first, CASCADE_KEEP - 1)[:CASCADE_KEEP]
        out = first.copy()
        out[keep] += self._predict(x[keep], CASCADE_TREES, None)
        rest = np.ones(len(x), dtype=bool)
        rest[keep] = False
        out[rest] -= first[rest].max() - out[keep].min() + 1.0
        return out

    def _predict(self, x: npt.NDArray[np.float32], first: int, count: int | None) -> npt.NDArray[np.float64]:
        """Sum of ``count`` trees from ``first`` (all the rest when None), one thread."""
        if self.columns is not None:
            x = x[:, self.columns]
        scores = self.booster.predict(x, start_iteration=first, num_iteration=count, num_threads=1)
        return np.asarray(scores, dtype=np.float64)

    def to_text(self) -> str:
        return str(self.booster.model_to_string())

    @classmethod
    def from_text(cls, text: str, params: RankerParams) -> Ranker:
        return cls(lightgbm.Booster(model_str=text), params)

    def describe(self) -> dict[str, object]:
        return {
            "trees": self.booster.num_trees(),
            **asdict(self.params),
            "features": list(self.booster.feature_name()),
        }


def fit_ranker(
    groups: Sequence[npt.NDArray[np.float32]],
    relevant: Sequence[npt.NDArray[np.bool_]],
    discovery: Sequence[bool],
    params: RankerParams | None = None,
) -> Ranker:
    """Fit on cases: per case its features matrix, which rows were visited, and whether
    the visit was a discovery (a first visit)."""
    params = params or RankerParams()
    if not groups:
        raise ValueError("no cases to train the ranker on")
    sizes = np.array([len(g) for g in groups])
    weights = np.repeat(np.where(np.asarray(discovery), params.discovery_weight, 1.0), sizes)
    names = params.features()
    columns = _columns(names)
    rows = np.vstack(groups)
    data = lightgbm.Dataset(
        rows if columns is None else rows[:, columns],
        np.concatenate(relevant).astype(np.int32),
        group=sizes,
        weight=weights,
        feature_name=names,
        params={"verbose": -1},
    )
    booster = lightgbm.train(
        {
            "objective": "lambdarank",
            "lambdarank_truncation_level": 20,
            "learning_rate": params.learning_rate,
            "num_leaves": params.leaves,
            "min_data_in_leaf": params.min_cases_in_leaf,
            "monotone_constraints": [DIRECTION[f] for f in names],
            "monotone_constraints_method": "advanced",
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "seed": params.seed,
            "deterministic": True,
            "num_threads": params.threads,
            "verbose": -1,
        },
        data,
        num_boost_round=params.rounds,
    )
    return Ranker(booster, params)
