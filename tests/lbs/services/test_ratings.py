"""The rating maths on numbers worked out by hand, and the rating table that serves them."""

from __future__ import annotations

import numpy as np
import pytest

from lbs.services.rating_table import RatingTable
from lbs.services.ratings import bayesian_average, prior_means, wilson_lower_bound

HELSINKI = (60.1699, 24.9384)
TAMPERE = (61.4978, 23.7610)


@pytest.mark.parametrize(
    ("successes", "n", "bound"),
    [
        # Published values of the 95 % Wilson score interval's lower end (z = 1.96).
        (1, 1, 0.2065),
        (8, 10, 0.4902),
        (80, 100, 0.7112),
        (50, 50, 0.9286),
        (0, 10, 0.0),
        (0, 0, 0.0),  # no reviews: nothing to recommend
    ],
)
def test_wilson_lower_bound(successes: int, n: int, bound: float) -> None:
    assert wilson_lower_bound(successes, n) == pytest.approx(bound, abs=5e-5)


def test_the_bayesian_average_pulls_few_reviews_towards_the_prior() -> None:
    # m = 10: one 5-star review at a prior of 4 counts for 1/11 of the way.
    assert bayesian_average(5, 1, 4.0) == pytest.approx(45 / 11)
    assert bayesian_average(225, 50, 4.0) == pytest.approx(265 / 60)
    assert bayesian_average(0, 0, 3.7) == pytest.approx(3.7)
    # One 5 beats fifty averaging 4.5 only where places like it average above 4.44.
    assert bayesian_average(5, 1, 4.0) < bayesian_average(225, 50, 4.0)
    assert bayesian_average(5, 1, 4.5) > bayesian_average(225, 50, 4.5)


def test_the_prior_takes_the_narrowest_level_with_ten_reviews() -> None:
    city = (np.array([45.0, 36.0, 0.0]), np.array([10.0, 9.0, 0.0]))
    category = (np.array([100.0, 160.0, 0.0]), np.array([25.0, 40.0, 3.0]))

    priors = prior_means(city, category, (300.0, 100.0))

    assert priors.tolist() == pytest.approx([4.5, 4.0, 3.0])
    assert prior_means(city, category, (0.0, 0.0))[2] == 3.0  # no review anywhere: the scale's middle


def test_the_table_rates_each_merchant_against_its_city_and_category() -> None:
    table = RatingTable()
    helsinki = [(i, *HELSINKI, "cafe", 5, 20, 4) for i in range(1, 4)]  # three cafés, 4.0 each
    table.load([*helsinki, (10, *TAMPERE, "cafe", 1, 5, 1), (11, *HELSINKI, "bar", 1, 1, 0)])

    views = table.views([1, 10, 11, 99])

    # Helsinki's cafés: 15 reviews, mean 4.0; Tampere's has 1, so the cafés' mean (65/16).
    assert views[1] == {"average": round((40 + 20) / 15, 2), "count": 5, "recommend": 0.38, "mean": 4.0}
    assert views[10] is not None and views[10]["average"] == round((10 * 65 / 16 + 5) / 11, 2)
    # The only bar: too few bar reviews, so every review's mean (66/17).
    assert views[11] is not None and views[11]["average"] == round((10 * 66 / 17 + 1) / 11, 2)
    assert views[99] is None
    averages = table.averages(np.array([11, 99, 1]))
    assert np.isnan(averages[1]) and averages[2] == views[1]["average"]


def test_changes_move_a_merchant_and_its_place_s_prior() -> None:
    table = RatingTable()
    table.load([(i, *HELSINKI, "cafe", 2, 10, 2) for i in range(1, 6)])  # 10 reviews of 5
    assert table.prior_of(1) == 5.0

    table.apply([(5, *TAMPERE, "cafe", 2, 10, 2), (6, *HELSINKI, "cafe", 0, 0, 0)])  # moved; no reviews

    assert table.prior_of(1) == 5.0  # Helsinki has 8 reviews left: the cafés' mean, still 5
    table.apply([(7 + i, *HELSINKI, "cafe", 1, 1, 0) for i in range(40)])  # slots beyond the first 16
    assert table.prior_of(1) == pytest.approx((40 + 40) / 48)
    assert len(table) == 45 and table.views([6])[6] is None
    table.apply([(1, *HELSINKI, "cafe", 0, 0, 0)])  # its reviews gone
    assert table.views([1])[1] is None and np.isnan(table.averages([1])[0])
