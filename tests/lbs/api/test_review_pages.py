"""GET /v1/merchants/{id}/reviews pages never repeat or skip a review, under either order,
whatever the ratings, the ties in time and the page size (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, update

from lbs.models import Review
from tests.deals_factory import make_user
from tests.reviews_support import GENEROUS, reviewed, shop

N = 24
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(**GENEROUS)


@pytest.fixture
def written(client: FlaskClient) -> tuple[int, list[int]]:
    merchant_id, key, deal_id = shop(client)
    _, other_key, other_deal = shop(client)
    _, token = make_user(client)
    ids = [reviewed(client, key, token, deal_id, 3)["id"] for _ in range(N)]
    reviewed(client, other_key, token, other_deal, 5)  # another merchant's: never listed
    return merchant_id, ids


def _pages(client: FlaskClient, merchant_id: int, sort: str, limit: int) -> list[int]:
    seen: list[int] = []
    cursor = None
    for _ in range(N + 1):
        query = {"sort": sort, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/merchants/{merchant_id}/reviews", query_string=query).get_json()
        assert len(page["items"]) <= limit
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("more pages than reviews")


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ratings=st.lists(st.integers(1, 5), min_size=N, max_size=N),
    # Few distinct instants: many reviews share one, down to the microsecond.
    minutes=st.lists(st.sampled_from([0, 0, 1, 7]), min_size=N, max_size=N),
    micros=st.lists(st.sampled_from([0, 1, 999_999]), min_size=N, max_size=N),
    limit=st.integers(1, 7),
    sort=st.sampled_from(["newest", "rating"]),
)
def test_pages_never_repeat_or_skip(
    ratings: list[int],
    minutes: list[int],
    micros: list[int],
    limit: int,
    sort: str,
    written: tuple[int, list[int]],
    client: FlaskClient,
    engine: Engine,
) -> None:
    merchant_id, ids = written
    created = [BASE + timedelta(minutes=m, microseconds=u) for m, u in zip(minutes, micros, strict=True)]
    with engine.begin() as c:  # through the model's types: times stored as the service stores them
        for review_id, rating, at in zip(ids, ratings, created, strict=True):
            c.execute(update(Review).where(Review.id == review_id).values(rating=rating, created_at=at))
    key = {i: (r, t, i) for i, r, t in zip(ids, ratings, created, strict=True)}
    if sort == "rating":
        expected = sorted(ids, key=lambda i: (key[i][0], key[i][1], i), reverse=True)
    else:
        expected = sorted(ids, key=lambda i: (key[i][1], i), reverse=True)

    assert _pages(client, merchant_id, sort, limit) == expected
