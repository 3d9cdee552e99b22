"""Review ratings per item: a Bayesian average toward the item's category mean, and a count.

An item's rating is (m x C + the sum of its ratings) / (m + its reviews), with m =
PRIOR_REVIEWS and C the mean rating of the reviews of items in its category once they
number PRIOR_MIN_REVIEWS, else of all reviews: one 5-star review moves a new merchant a
little above its kind, fifty reviews averaging 4.5 stars put one near 4.5. The service
shows the same average (lbs.services.ratings), with C per city and category first; here
the data given is one city. An item without reviews has C, and ``prior`` (the mean of
all reviews; 0 without any) is what an item the model has never seen gets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# The prior's weight, in reviews (issue 19: m = 10).
PRIOR_REVIEWS = 10.0
# A category's mean is its items' prior from this many reviews on (fewer: the mean of all).
PRIOR_MIN_REVIEWS = 10


@dataclass(frozen=True)
class Reviews:
    """Reviews in the caller's ids: which item, its rating (1-5 stars), when (unix seconds)."""

    items: IntArray
    ratings: FloatArray
    times: FloatArray

    @classmethod
    def of(cls, items: npt.ArrayLike, ratings: npt.ArrayLike, times: npt.ArrayLike) -> Reviews:
        return cls(
            np.asarray(items, dtype=np.int64),
            np.asarray(ratings, dtype=np.float64),
            np.asarray(times, dtype=np.float64),
        )

    @classmethod
    def none(cls) -> Reviews:
        return cls.of([], [], [])

    def __len__(self) -> int:
        return len(self.items)

    def before(self, t: float) -> Reviews:
        """The reviews written strictly before t."""
        keep = self.times < t
        return Reviews(self.items[keep], self.ratings[keep], self.times[keep])


@dataclass(frozen=True)
class Ratings:
    """Per item (column): the Bayesian average and the number of reviews; and the mean of
    all reviews (0 without any), for items unknown to the model."""

    average: npt.NDArray[np.float32]
    count: npt.NDArray[np.float32]
    prior: float

    @classmethod
    def empty(cls, n_items: int) -> Ratings:
        """No reviews: every average and count 0 (a model trained before ratings loads so)."""
        return cls(np.zeros(n_items, dtype=np.float32), np.zeros(n_items, dtype=np.float32), 0.0)


def item_ratings(
    items: IntArray,
    ratings: FloatArray,
    n_items: int,
    categories: IntArray | None = None,
    prior_reviews: float = PRIOR_REVIEWS,
    prior_min_reviews: int = PRIOR_MIN_REVIEWS,
) -> Ratings:
    """Ratings of items 0..n_items-1 from reviews (``items`` are columns; a review of a
    negative or too large column counts for no item and no mean). ``categories``: each
    item's category code (negative: none), for a prior per category."""
    inside = (items >= 0) & (items < n_items)
    items, ratings = items[inside], ratings[inside]
    count = np.bincount(items, minlength=n_items).astype(np.float64)
    total = np.bincount(items, weights=ratings, minlength=n_items)
    overall = float(ratings.mean()) if len(ratings) else 0.0
    prior = np.full(n_items, overall)
    if categories is not None and len(ratings):
        known = categories >= 0
        codes = np.where(known, categories, 0)
        width = int(codes.max(initial=0)) + 1
        per_count = np.bincount(codes[items], weights=known[items].astype(np.float64), minlength=width)
        per_total = np.bincount(codes[items], weights=np.where(known[items], ratings, 0.0), minlength=width)
        enough = (per_count >= prior_min_reviews) & (per_count > 0)
        mean = np.divide(per_total, per_count, out=np.full(width, overall), where=enough)
        prior = np.where(known, mean[codes], overall)
    average = (prior_reviews * prior + total) / (prior_reviews + count)
    return Ratings(average.astype(np.float32), count.astype(np.float32), overall)


@dataclass(frozen=True)
class Categories:
    """Each item's category code, in the caller's ids (any order)."""

    ids: IntArray
    codes: IntArray

    def of(self, ids: IntArray) -> IntArray:
        """The code of each of ``ids``; -1 for an id not given."""
        if not len(self.ids):
            return np.full(len(ids), -1, dtype=np.int64)
        order = np.argsort(self.ids, kind="stable")
        known, codes = self.ids[order], self.codes[order]
        at = np.minimum(np.searchsorted(known, ids), len(known) - 1)
        return np.where(known[at] == ids, codes[at], -1).astype(np.int64)


@dataclass(frozen=True)
class RatedItems:
    """Reviews of items 0..n_items-1 (their ``items`` are columns) and each item's category
    (None: one prior for all): the items' ratings as of any time."""

    reviews: Reviews
    n_items: int
    categories: IntArray | None = None

    def before(self, t: float) -> Ratings:
        """Ratings from the reviews written strictly before t."""
        written = self.reviews.before(t)
        return item_ratings(written.items, written.ratings, self.n_items, self.categories)
