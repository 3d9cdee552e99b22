"""A merchant's rating as shown: the Bayesian average towards a prior, the Wilson lower
bound of its 4-5 star share, its count and raw mean (docs/reviews.md#ratings).

    average   = (m * C + rating_sum) / (m + review_count)       m = PRIOR_REVIEWS = 10
    recommend = Wilson lower bound of recommend_count / review_count at z = 1.96

C, the prior, is the mean rating of the reviews of merchants of the same category in the
same H3 resolution-5 cell (~250 km2: a city and its suburbs) once they number
PRIOR_MIN_REVIEWS; else of the category everywhere, once it has that many; else of every
review. A merchant with few reviews is thus shown near what its kind of place gets where
it is, and moves towards its own mean as its reviews add up.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PRIOR_REVIEWS = 10
PRIOR_MIN_REVIEWS = 10
WILSON_Z = 1.96
CITY_RESOLUTION = 5
# The prior before there is any review at all (the scale's middle): never shown, since a
# merchant with a rating makes at least one review.
NEUTRAL = 3.0
RECOMMEND_FROM = 4  # stars: a review of 4 or 5 "recommends"

FloatArray = npt.NDArray[np.float64]


def bayesian_average(rating_sum: float, review_count: float, prior: float) -> float:
    return float(bayesian_averages(np.array([rating_sum], float), np.array([review_count], float), prior)[0])


def bayesian_averages(sums: FloatArray, counts: FloatArray, prior: FloatArray | float) -> FloatArray:
    return (PRIOR_REVIEWS * np.asarray(prior) + sums) / (PRIOR_REVIEWS + counts)


def wilson_lower_bound(successes: float, n: float, z: float = WILSON_Z) -> float:
    """The lower end of the Wilson score interval of successes / n (0 when n is 0)."""
    return float(wilson_lower_bounds(np.array([successes], float), np.array([n], float), z)[0])


def wilson_lower_bounds(successes: FloatArray, n: FloatArray, z: float = WILSON_Z) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = successes / n
        z2 = z * z
        centre = p + z2 / (2 * n)
        margin = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        bound = (centre - margin) / (1 + z2 / n)
    return np.where(n > 0, np.maximum(bound, 0.0), 0.0)


Level = tuple[FloatArray, FloatArray]  # (rating sums, review counts), one per merchant


def prior_means(city_category: Level, category: Level, everyone: tuple[float, float]) -> FloatArray:
    """C per merchant: its city-and-category's mean once that level has PRIOR_MIN_REVIEWS
    reviews, else its category's (everywhere) once that has as many, else every review's."""
    every_sum, every_count = everyone
    fallback = every_sum / every_count if every_count else NEUTRAL
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            city_category[1] >= PRIOR_MIN_REVIEWS,
            city_category[0] / city_category[1],
            np.where(category[1] >= PRIOR_MIN_REVIEWS, category[0] / category[1], fallback),
        )
