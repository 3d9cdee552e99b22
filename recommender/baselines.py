"""The evaluation's reference rankings: distance, popularity, own frequency, ALS alone."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from recommender.als import AlsModel
from recommender.evaluation import Case, Checkins, FloatArray, Ranker

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


def als_ranker(model: AlsModel) -> Ranker:
    def rank(case: Case) -> FloatArray:
        return model.scores(case.user, case.candidates).astype(np.float64)

    return rank
