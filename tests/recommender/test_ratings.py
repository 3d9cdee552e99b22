"""Review ratings as ranking features: the Bayesian average on tiny arrays with known
answers, only reviews before a fit count, and the features read them per candidate."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import training
from recommender.features import COLUMN, History, features
from recommender.ratings import Categories, RatedItems, Reviews, item_ratings
from recommender.synthetic import town

RADIUS_M = 3000.0


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def floats(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_without_categories_the_prior_is_ten_reviews_at_the_mean_of_all() -> None:
    ratings = item_ratings(ints(0, 0, 1), floats(5, 5, 2), n_items=3)

    assert ratings.prior == pytest.approx(4.0)
    np.testing.assert_allclose(ratings.average, [(40 + 10) / 12, (40 + 2) / 11, 4.0], rtol=1e-6)
    np.testing.assert_array_equal(ratings.count, [2, 1, 0])


def test_the_prior_is_the_mean_of_the_item_s_category() -> None:
    # Items 0, 1: category 0 (reviews 5, 5, 2: mean 4); items 2, 3: category 1 (one review, 3);
    # item 4: no category. All reviews: 15 / 4.
    categories = ints(0, 0, 1, 1, -1)
    ratings = item_ratings(ints(0, 0, 1, 2), floats(5, 5, 2, 3), 5, categories, prior_min_reviews=1)

    assert ratings.prior == pytest.approx(3.75)
    want = [(40 + 10) / 12, (40 + 2) / 11, (30 + 3) / 11, 3.0, 3.75]
    np.testing.assert_allclose(ratings.average, want, rtol=1e-6)


def test_a_category_without_reviews_falls_back_to_the_mean_of_all() -> None:
    ratings = item_ratings(ints(0, 0), floats(5, 3), 3, categories=ints(0, 7, 7), prior_min_reviews=1)
    np.testing.assert_allclose(ratings.average, [(40 + 8) / 12, 4.0, 4.0], rtol=1e-6)


def test_a_category_s_mean_is_its_prior_from_ten_reviews_on() -> None:
    # Category 0: nine 5s, then ten; category 1: ten 1s. Item 2 (category 0) has none.
    def prior_of_item_2(fives: int) -> float:
        items = np.r_[np.zeros(fives), np.ones(10)].astype(np.int64)
        stars = np.r_[np.full(fives, 5.0), np.full(10, 1.0)]
        return float(item_ratings(items, stars, 3, categories=ints(0, 1, 0)).average[2])

    assert prior_of_item_2(9) == pytest.approx((9 * 5 + 10) / 19, rel=1e-6)  # the mean of all
    assert prior_of_item_2(10) == pytest.approx(5.0)


def test_one_five_star_review_rates_below_fifty_averaging_four_and_a_half() -> None:
    # Item 0: one 5; item 1: fifty, 25 of 4 and 25 of 5; item 2: a hundred 4s (the prior's mass).
    items = np.r_[0, np.full(50, 1), np.full(100, 2)]
    stars = np.r_[5.0, np.tile([4.0, 5.0], 25), np.full(100, 4.0)]
    ratings = item_ratings(items.astype(np.int64), stars, 3)

    assert ratings.average[0] < ratings.average[1]
    assert ratings.average[1] == pytest.approx((10 * ratings.prior + 225) / 60, rel=1e-6)


def test_reviews_of_no_item_count_for_nothing_and_no_reviews_rate_zero() -> None:
    ratings = item_ratings(ints(-3, 0, 5), floats(1, 4, 1), n_items=2)
    assert ratings.prior == pytest.approx(4.0)
    np.testing.assert_array_equal(ratings.count, [1, 0])

    none = item_ratings(ints(), floats(), n_items=2)
    assert none.prior == 0.0 and not none.average.any() and not none.count.any()


def test_only_reviews_written_before_a_fit_rate_it() -> None:
    rated = RatedItems(Reviews.of([0, 0, 1], [5, 1, 3], [100.0, 200.0, 200.0]), n_items=2)

    early, late = rated.before(200.0), rated.before(201.0)

    np.testing.assert_array_equal(early.count, [1, 0])
    assert early.prior == pytest.approx(5.0)
    np.testing.assert_array_equal(late.count, [2, 1])
    assert late.prior == pytest.approx(3.0)


def test_categories_are_looked_up_by_id() -> None:
    categories = Categories(ints(30, 10, 20), ints(2, 0, 1))
    np.testing.assert_array_equal(categories.of(ints(10, 20, 25, 30, 99)), [0, 1, -1, 2, -1])
    np.testing.assert_array_equal(Categories(ints(), ints()).of(ints(1, 2)), [-1, -1])


def test_training_rates_the_items_by_the_window_s_reviews_and_features_read_them() -> None:
    world = town(users=60, visits_per_user=30)
    data = training.Interactions.visits_only(world.users, world.items, world.times)
    reviewed = world.item_ids[:3]
    unknown = int(world.item_ids.max()) + 1000  # no interactions: rates nothing
    reviews = Reviews.of([*reviewed, reviewed[0], unknown], [5, 2, 4, 3, 1], np.full(5, world.times[0]))
    categories = Categories(world.item_ids, np.zeros(len(world.item_ids), dtype=np.int64))

    model = training.train(data, world.candidates_of(RADIUS_M), reviews=reviews, categories=categories)

    assert model.meta["reviews"] == 4
    ratings = model.signals.ratings
    columns = model.columns(reviewed)
    np.testing.assert_array_equal(ratings.count[columns], [2, 1, 1])
    np.testing.assert_allclose(
        ratings.average[columns], [(35 + 8) / 12, (35 + 2) / 11, (35 + 4) / 11], rtol=1e-6
    )
    x = features(
        model.signals, None, History.empty(), None, ints(*columns, -1 - unknown), np.full(4, 100.0), 0.0
    )
    np.testing.assert_allclose(x[:, COLUMN["rating"]], [*ratings.average[columns], 3.5], rtol=1e-6)
    np.testing.assert_allclose(x[:, COLUMN["reviews"]], np.log1p([2, 1, 1, 0]), rtol=1e-6)
