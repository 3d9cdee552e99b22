"""The evaluation's rankings: distance, popularity, own frequency, ALS alone, and lbs."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from recommender.evaluation import Case, Checkins, FloatArray, Ranker
from recommender.model import Model
from recommender.training import histories

# Own counts are whole numbers: scaling them past any popularity makes popularity a tie-break.
_TIE_BREAK = 1e-9


def counts_matrix(checkins: Checkins, shape: tuple[int, int]) -> csr_matrix:
    """users x venues check-in counts."""
    ones = np.ones(len(checkins), dtype=np.float64)
    matrix = csr_matrix((ones, (checkins.users, checkins.venues)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def distance_ranker() -> Ranker:
    def rank(case: Case) -> FloatArray:
        return -case.distances_m

    return rank


def popularity_ranker(popularity: FloatArray) -> Ranker:
    def rank(case: Case) -> FloatArray:
        return popularity[case.candidates]

    return rank


def own_frequency_ranker(own: csr_matrix, popularity: FloatArray) -> Ranker:
    """The user's own train check-ins at each venue, ties by popularity."""
    normalised = popularity / max(float(popularity.max()), 1.0)

    def rank(case: Case) -> FloatArray:
        counts = np.asarray(own[case.user, case.candidates].toarray()).ravel()
        return counts + _TIE_BREAK * normalised[case.candidates]

    return rank


def baseline_rankers(train: Checkins, shape: tuple[int, int]) -> dict[str, Ranker]:
    """Distance, popularity and own frequency, from the train check-ins (users x venues ``shape``)."""
    counts = counts_matrix(train, shape)
    popularity = np.asarray(counts.sum(axis=0)).ravel()
    return {
        "distance": distance_ranker(),
        "popularity": popularity_ranker(popularity),
        "own_frequency": own_frequency_ranker(counts, popularity),
    }


def als_ranker(model: Model) -> Ranker:
    """The ALS score alone (0 for a venue the model has not seen)."""

    def rank(case: Case) -> FloatArray:
        row = model.user_row(case.user)
        columns = model.columns(case.candidates)
        known = columns >= 0
        scores = np.zeros(len(columns))
        if row is not None:
            scores[known] = model.signals.als.scores(row, columns[known])
        return scores

    return rank


def lbs_ranker(model: Model, checkins: Checkins) -> Ranker:
    """The project's ranking, through Model.score as /v1/nearby calls it: the user's own
    check-ins strictly before the case are its history."""
    history = histories(checkins.users, model.columns(checkins.venues), checkins.times)

    def rank(case: Case) -> FloatArray:
        before = history[case.user].before(case.time)
        return model.score(
            case.user, before, case.origin, case.candidates, case.distances_m, case.time
        ).scores

    return rank
