"""The fixed merchant taxonomy: one flat list of category slugs, documented in docs/categories.md."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """A merchant's primary category. The order is stable: the index stores the position."""

    cafe = "cafe"
    restaurant = "restaurant"
    fast_food = "fast_food"
    bar = "bar"
    bakery = "bakery"
    grocery = "grocery"
    fashion = "fashion"
    beauty = "beauty"
    health = "health"
    fitness = "fitness"
    entertainment = "entertainment"
    culture = "culture"
    lodging = "lodging"
    services = "services"
    electronics = "electronics"
    home = "home"
    other = "other"


CATEGORY_CODES: dict[str, int] = {c.value: i for i, c in enumerate(Category)}
N_CATEGORIES = len(CATEGORY_CODES)
