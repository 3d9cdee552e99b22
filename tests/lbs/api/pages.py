"""Walking every page of GET /v1/nearby by following next_cursor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient


@dataclass
class Walk:
    ids: list[int] = field(default_factory=list)
    distances_m: list[float] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    page_sizes: list[int] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)


def walk_nearby(
    client: FlaskClient,
    params: dict[str, Any],
    limits: Callable[[int], int] = lambda _: 100,
    max_pages: int = 10_000,
) -> Walk:
    """Every page of a query, in order; asserts each page is a 200 JSON page of at most limit items."""
    walk = Walk()
    cursor = None
    for page_number in range(max_pages):
        limit = limits(page_number)
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/nearby", query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/json"
        body = response.get_json()
        assert len(body["items"]) <= limit
        walk.totals.append(body["total"])
        walk.page_sizes.append(len(body["items"]))
        walk.items.extend(body["items"])
        walk.ids.extend(item["merchant"]["id"] for item in body["items"])
        walk.distances_m.extend(item["distance_m"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return walk
        assert len(body["items"]) == limit, "a page before the last is full"
    raise AssertionError(f"more than {max_pages} pages")
