"""Ratings where merchants are shown (nearby, the map, merchant reads, review pages): the
Bayesian average towards the city-and-category mean and the Wilson bound, min_rating and
sort=rating, and a rating written on one worker seen by another."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from tests.deals_factory import make_user
from tests.reviews_support import GENEROUS, reviewed, shop

HELSINKI = (60.1699, 24.9384)
TAMPERE = (61.4978, 23.7610)  # another H3 resolution-5 cell: another "city"


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(**GENEROUS)


@dataclass(frozen=True)
class Town:
    one_five: int  # one 5-star review
    fifty: int  # 50 reviews averaging 4.5
    peers: int  # 20 reviews of 3 stars: the city-and-category mean comes down to ~4.08
    unrated: int


def _merchant_with(
    client: FlaskClient, ratings: list[int], lat: float, lon: float, category: str = "restaurant"
) -> int:
    merchant_id, key, deal_id = shop(client, lat, lon, category=category)
    _, token = make_user(client)
    for rating in ratings:
        reviewed(client, key, token, deal_id, rating)
    return merchant_id


def _town(client: FlaskClient) -> Town:
    lat, lon = HELSINKI
    return Town(
        one_five=_merchant_with(client, [5], lat + 0.001, lon),
        fifty=_merchant_with(client, [5, 4] * 25, lat + 0.004, lon),
        peers=_merchant_with(client, [3] * 20, lat + 0.002, lon),
        unrated=_merchant_with(client, [], lat + 0.0005, lon),
    )


def _expected(total: int, count: int, prior: float) -> float:
    return round((10 * prior + total) / (10 + count), 2)


def _nearby(client: FlaskClient, **params: Any) -> dict[str, Any]:
    response = client.get(
        "/v1/nearby", query_string={"lat": HELSINKI[0], "lon": HELSINKI[1], "radius_m": 2000, **params}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def _ids(page: dict[str, Any]) -> list[int]:
    return [i["merchant"]["id"] for i in page["items"]]


def test_one_five_star_review_ranks_below_fifty_averaging_four_and_a_half(client: FlaskClient) -> None:
    town = _town(client)
    prior = (5 + 225 + 60) / 71  # every review of Helsinki's restaurants

    page = _nearby(client, sort="rating")

    assert page["ranking"] == "rating"
    assert _ids(page) == [town.fifty, town.one_five, town.peers, town.unrated]
    ratings = {i["merchant"]["id"]: i["merchant"]["rating"] for i in page["items"]}
    assert ratings[town.fifty] == {
        "average": _expected(225, 50, prior),
        "count": 50,
        "recommend": 0.93,
        "mean": 4.5,
    }
    assert ratings[town.one_five] == {
        "average": _expected(5, 1, prior),
        "count": 1,
        "recommend": 0.21,
        "mean": 5.0,
    }
    assert ratings[town.peers] == {
        "average": _expected(60, 20, prior),
        "count": 20,
        "recommend": 0.0,
        "mean": 3.0,
    }
    assert ratings[town.unrated] is None
    assert (ratings[town.fifty]["average"], ratings[town.one_five]["average"]) == (4.43, 4.17)
    # By distance, the same merchants the other way round: the rating alone moved them.
    assert _ids(_nearby(client, sort="distance")) == [town.unrated, town.one_five, town.peers, town.fifty]


def test_min_rating_and_rating_pages_everywhere_merchants_are_shown(client: FlaskClient) -> None:
    town = _town(client)

    assert _ids(_nearby(client, sort="distance", min_rating=4)) == [town.one_five, town.fifty]
    assert _ids(_nearby(client, sort="rating", min_rating=4.2)) == [town.fifty]
    assert _nearby(client, min_rating=4.2)["total"] == 1
    assert _ids(_nearby(client, sort="rating", has_deal="true")) == [
        town.fifty,
        town.one_five,
        town.peers,
        town.unrated,
    ]
    assert _ids(_nearby(client, sort="rating", has_deal="true", min_rating=3)) == [
        town.fifty,
        town.one_five,
        town.peers,
    ]
    assert _ids(_nearby(client, sort="rating", q="deal shop", min_rating=4)) == [town.fifty, town.one_five]
    # Pages of one under sort=rating: each merchant once, in order.
    seen, cursor = [], None
    while True:
        page = _nearby(client, sort="rating", limit=1, **({"cursor": cursor} if cursor else {}))
        seen += _ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [town.fifty, town.one_five, town.peers, town.unrated]
    # A cursor of sort=rating pages nothing else.
    first = _nearby(client, sort="rating", limit=1)["next_cursor"]
    other = client.get(
        "/v1/nearby",
        query_string={
            "lat": HELSINKI[0],
            "lon": HELSINKI[1],
            "radius_m": 2000,
            "sort": "distance",
            "cursor": first,
        },
    )
    assert other.status_code == 400
    geo = _nearby(client, sort="rating", format="geojson", limit=1)
    assert geo["features"][0]["properties"]["rating"]["count"] == 50
    box = client.get(
        "/v1/merchants", query_string={"bbox": "24.90,60.15,24.98,60.19", "min_rating": 4}
    ).get_json()
    assert sorted(f["id"] for f in box["features"]) == sorted([town.one_five, town.fifty])
    assert {f["id"]: f["properties"]["rating"]["count"] for f in box["features"]} == {
        town.one_five: 1,
        town.fifty: 50,
    }
    clusters = client.get(
        "/v1/merchants",
        query_string={"bbox": "24.90,60.15,24.98,60.19", "min_rating": 4, "cluster": "true", "zoom": 10},
    ).get_json()
    assert clusters["total"] == 2
    read = client.get(f"/v1/merchants/{town.fifty}").get_json()
    assert read["rating"]["count"] == 50
    assert client.get(f"/v1/merchants/{town.fifty}?fields=rating").get_json() == {
        "id": town.fifty,
        "rating": read["rating"],
    }
    reviews = client.get(f"/v1/merchants/{town.fifty}/reviews").get_json()
    assert reviews["rating"] == read["rating"]
    for bad in ("0.5", "5.5", "nan", "high"):
        assert _nearby_status(client, min_rating=bad) == 400


def _nearby_status(client: FlaskClient, **params: Any) -> int:
    return client.get(
        "/v1/nearby", query_string={"lat": HELSINKI[0], "lon": HELSINKI[1], **params}
    ).status_code


def test_the_prior_falls_back_to_the_category_then_to_every_review(client: FlaskClient) -> None:
    town = _town(client)
    # Tampere has no other restaurant with reviews: the prior is every restaurant's mean.
    tampere = _merchant_with(client, [5], *TAMPERE)
    category_prior = (5 + 225 + 60 + 5) / 72
    # The only café anywhere: too few café reviews, so every review's mean.
    cafe = _merchant_with(client, [1], HELSINKI[0] + 0.003, HELSINKI[1], category="cafe")
    everyone = (5 + 225 + 60 + 5 + 1) / 73

    rating = client.get(f"/v1/merchants/{tampere}").get_json()["rating"]
    cafe_rating = client.get(f"/v1/merchants/{cafe}").get_json()["rating"]

    assert rating["average"] == _expected(5, 1, category_prior)
    assert cafe_rating["average"] == _expected(1, 1, everyone)
    # Helsinki's restaurants are still pulled towards their own city's mean (now 290/71).
    assert client.get(f"/v1/merchants/{town.fifty}").get_json()["rating"]["average"] == _expected(
        225, 50, 290 / 71
    )


def test_a_rating_written_on_one_worker_is_seen_by_another(make_app: Callable[..., OpenAPI]) -> None:
    writer, reader = make_app(**GENEROUS).test_client(), make_app(**GENEROUS).test_client()
    merchant_id, key, deal_id = shop(writer, *HELSINKI)
    _, token = make_user(writer)
    assert reader.get(f"/v1/merchants/{merchant_id}").get_json()["rating"] is None
    assert _ids(_nearby(reader, min_rating=1)) == []

    reviewed(writer, key, token, deal_id, 4)

    # The reader's index polls on every query here (LBS_INDEX_REFRESH_S=0): within that delay.
    assert reader.get(f"/v1/merchants/{merchant_id}").get_json()["rating"]["count"] == 1
    assert _ids(_nearby(reader, min_rating=1)) == [merchant_id]
