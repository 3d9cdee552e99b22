"""GET /v1/nearby over HTTP on both databases, checked against the brute-force oracle."""

from __future__ import annotations

import random

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.conftest import OPERATOR
from tests.factories import merchant, points_of, scatter, seed
from tests.lbs.api.pages import walk_nearby
from tests.oracle import assert_nearby_exact, destination

# distance_m is rounded to centimetres in the response.
ROUNDING_M = 0.005 + 1e-6

PLACES = {
    "helsinki": (60.17, 24.94),
    "antimeridian": (-17.0, 180.0),
    "north-pole": (89.98, 30.0),
}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_page_matches_the_oracle(place: str, engine: Engine, client: FlaskClient) -> None:
    lat, lon = PLACES[place]
    rng = random.Random(place)
    seeded = seed(engine, scatter(rng, lat, lon, 600, 3000.0) + scatter(rng, 10.0, 10.0, 20, 50_000.0, "far"))
    points = points_of(seeded)

    queries = [(lat, lon, r) for r in (1.0, 300.0, 1000.0, 2500.0)]
    queries += [
        (*destination(lat, lon, rng.uniform(0, 360), rng.uniform(0, 2000)), rng.uniform(100, 3000))
        for _ in range(4)
    ]
    for q_lat, q_lon, radius_m in queries:
        walk = walk_nearby(client, {"lat": q_lat, "lon": q_lon, "radius_m": radius_m})

        assert len(set(walk.totals)) == 1, f"total changed between pages: {walk.totals}"
        assert_nearby_exact(
            points, q_lat, q_lon, radius_m, walk.ids, walk.totals[0], walk.distances_m, ROUNDING_M
        )
        assert all(item["merchant"]["status"] == "active" for item in walk.items)


def test_items_carry_the_merchant_record(engine: Engine, client: FlaskClient) -> None:
    (cafe,) = seed(engine, [merchant("Kahvila", 60.1701, 24.9402, "cafe")])

    body = client.get("/v1/nearby", query_string={"lat": 60.17, "lon": 24.94}).get_json()

    assert body["ranking"] == "distance"
    assert body["total"] == 1
    assert body["next_cursor"] is None
    (item,) = body["items"]
    assert item["merchant"]["id"] == cafe.id
    assert item["merchant"]["name"] == "Kahvila"
    assert (item["merchant"]["lat"], item["merchant"]["lon"]) == (60.1701, 24.9402)
    assert item["merchant"]["timezone"] == "Europe/Helsinki"
    assert 0 < item["distance_m"] < 30


def test_items_say_whether_each_merchant_is_open_at_the_pages_instant(
    engine: Engine, client: FlaskClient
) -> None:
    hours = {"Baari": "Fr-Sa 18:00-02:00", "Toimisto": "Mo-Fr 09:00-18:00", "Kioski": None}
    seed(
        engine,
        [
            merchant(name, 60.1701 + 0.0001 * k, 24.9402).model_copy(update={"opening_hours": expression})
            for k, (name, expression) in enumerate(hours.items())
        ],
    )
    params = {"lat": 60.17, "lon": 24.94, "sort": "distance", "at": "2026-11-27T23:00:00+02:00"}  # a Friday

    body = client.get("/v1/nearby", query_string=params).get_json()
    features = client.get("/v1/nearby", query_string={**params, "format": "geojson"}).get_json(force=True)

    by_name = {
        i["merchant"]["name"]: (i["open_now"], i["closes_at"], i["next_open_at"]) for i in body["items"]
    }
    assert by_name == {
        "Baari": (True, "2026-11-28T02:00:00+02:00", None),
        "Toimisto": (False, None, "2026-11-30T09:00:00+02:00"),
        "Kioski": (None, None, None),
    }
    assert {f["properties"]["name"]: f["properties"]["open_now"] for f in features["features"]} == {
        "Baari": True,
        "Toimisto": False,
        "Kioski": None,
    }


def test_defaults_are_a_1000_m_radius_and_20_results(engine: Engine, client: FlaskClient) -> None:
    rng = random.Random(1)
    rows = [merchant(f"in{i}", *destination(0.0, 0.0, rng.uniform(0, 360), 900.0)) for i in range(30)]
    rows += [merchant(f"out{i}", *destination(0.0, 0.0, rng.uniform(0, 360), 1100.0)) for i in range(5)]
    seed(engine, rows)

    body = client.get("/v1/nearby?lat=0&lon=0").get_json()

    assert body["total"] == 30
    assert len(body["items"]) == 20
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("category", ["cafe,bar", "bar,cafe", " bar , cafe ", "cafe,bar,cafe"])
def test_category_filter_takes_a_comma_separated_list(
    category: str, engine: Engine, client: FlaskClient
) -> None:
    seeded = seed(engine, scatter(random.Random(7), 52.52, 13.40, 500, 2000.0))

    walk = walk_nearby(client, {"lat": 52.52, "lon": 13.40, "radius_m": 1500, "category": category})

    points = points_of(seeded, categories=["cafe", "bar"])
    assert_nearby_exact(points, 52.52, 13.40, 1500, walk.ids, walk.totals[0], walk.distances_m, ROUNDING_M)
    assert {item["merchant"]["category"] for item in walk.items} <= {"cafe", "bar"}
    assert walk.ids, "the data holds cafes and bars in the radius"


def test_category_may_be_repeated_and_mixed_with_commas(engine: Engine, client: FlaskClient) -> None:
    seed(
        engine,
        [
            merchant("Cafe", 60.0, 25.0, "cafe"),
            merchant("Bar", 60.0001, 25.0, "bar"),
            merchant("Bakery", 60.0002, 25.0, "bakery"),
            merchant("Gym", 60.0003, 25.0, "fitness"),
        ],
    )

    response = client.get("/v1/nearby?lat=60&lon=25&category=cafe,bar&category=bakery")

    assert response.status_code == 200
    body = response.get_json()
    assert sorted(i["merchant"]["name"] for i in body["items"]) == ["Bakery", "Bar", "Cafe"]
    assert body["total"] == 3


def test_inactive_and_closed_merchants_are_never_returned(engine: Engine, client: FlaskClient) -> None:
    seeded = seed(
        engine,
        [
            merchant("open", 35.0, 139.0, status="active"),
            merchant("paused", 35.0, 139.0, status="inactive"),
            merchant("gone", 35.0, 139.0, status="closed"),
        ],
    )

    body = client.get("/v1/nearby?lat=35&lon=139&radius_m=10").get_json()

    assert [i["merchant"]["id"] for i in body["items"]] == [seeded[0].id]
    assert body["total"] == 1


def test_geojson_is_an_rfc7946_feature_collection(engine: Engine, client: FlaskClient) -> None:
    seeded = seed(engine, scatter(random.Random(3), 40.4168, -3.7038, 50, 800.0, inactive_share=0.0))
    params = {"lat": 40.4168, "lon": -3.7038, "radius_m": 1000, "limit": 100}
    as_json = client.get("/v1/nearby", query_string=params).get_json()

    by_format = client.get("/v1/nearby", query_string={**params, "format": "geojson"})
    by_accept = client.get("/v1/nearby", query_string=params, headers={"Accept": "application/geo+json"})

    for response in (by_format, by_accept):
        assert response.status_code == 200
        assert response.mimetype == "application/geo+json"
        collection = response.get_json(force=True)
        assert collection["type"] == "FeatureCollection"
        assert "crs" not in collection, "RFC 7946 drops crs: coordinates are WGS84"
        features = collection["features"]
        assert [f["id"] for f in features] == [i["merchant"]["id"] for i in as_json["items"]]
        by_id = {s.id: s for s in seeded}
        for feature, item in zip(features, as_json["items"], strict=True):
            assert feature["type"] == "Feature"
            assert feature["geometry"]["type"] == "Point"
            lon, lat = feature["geometry"]["coordinates"]
            assert (lat, lon) == (by_id[feature["id"]].lat, by_id[feature["id"]].lon), "[lon, lat] order"
            assert feature["properties"]["distance_m"] == item["distance_m"]
            assert feature["properties"]["name"] == item["merchant"]["name"]
        assert collection["total"] == as_json["total"] == 50


def test_explicit_json_format_wins_over_a_geojson_accept_header(engine: Engine, client: FlaskClient) -> None:
    seed(engine, [merchant("a", 1.0, 1.0)])

    response = client.get("/v1/nearby?lat=1&lon=1&format=json", headers={"Accept": "application/geo+json"})

    assert response.mimetype == "application/json"
    assert response.get_json()["total"] == 1


def test_patched_position_status_and_category_show_at_once(engine: Engine, client: FlaskClient) -> None:
    (shop,) = seed(engine, [merchant("mover", 48.8566, 2.3522, "bakery")])
    paris = "/v1/nearby?lat=48.8566&lon=2.3522&radius_m=100"
    lyon = "/v1/nearby?lat=45.764&lon=4.8357&radius_m=100"

    def ids(url: str) -> list[int]:
        return [i["merchant"]["id"] for i in client.get(url).get_json()["items"]]

    assert ids(paris) == [shop.id]
    assert (
        client.patch(
            f"/v1/merchants/{shop.id}", json={"lat": 45.764, "lon": 4.8357}, headers=OPERATOR
        ).status_code
        == 200
    )
    assert ids(paris) == []
    assert ids(lyon) == [shop.id]

    assert (
        client.patch(f"/v1/merchants/{shop.id}", json={"status": "inactive"}, headers=OPERATOR).status_code
        == 200
    )
    assert ids(lyon) == []
    assert (
        client.patch(f"/v1/merchants/{shop.id}", json={"status": "active"}, headers=OPERATOR).status_code
        == 200
    )
    assert ids(lyon) == [shop.id]

    assert ids(lyon + "&category=bakery") == [shop.id]
    assert (
        client.patch(f"/v1/merchants/{shop.id}", json={"category": "cafe"}, headers=OPERATOR).status_code
        == 200
    )
    assert ids(lyon + "&category=bakery") == []
    assert ids(lyon + "&category=cafe") == [shop.id]
