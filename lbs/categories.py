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

# How reasons name a category in words: (one, many).
NAMES: dict[str, tuple[str, str]] = {
    "cafe": ("café", "cafés"),
    "restaurant": ("restaurant", "restaurants"),
    "fast_food": ("fast-food place", "fast-food places"),
    "bar": ("bar", "bars"),
    "bakery": ("bakery", "bakeries"),
    "grocery": ("grocery", "groceries"),
    "fashion": ("fashion shop", "fashion shops"),
    "beauty": ("beauty salon", "beauty salons"),
    "health": ("health practice", "health practices"),
    "fitness": ("gym", "gyms"),
    "entertainment": ("entertainment venue", "entertainment venues"),
    "culture": ("cultural venue", "cultural venues"),
    "lodging": ("place to stay", "places to stay"),
    "services": ("service shop", "service shops"),
    "electronics": ("electronics shop", "electronics shops"),
    "home": ("home store", "home stores"),
    "other": ("place", "places"),
}


def in_words(category: str, n: int) -> str:
    """'a café' or '3 cafés'."""
    one, many = NAMES.get(category, ("place", "places"))
    return f"a {one}" if n == 1 else f"{n} {many}"
