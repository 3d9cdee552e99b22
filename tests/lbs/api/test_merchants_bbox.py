"""GET /v1/merchants?bbox=…: exactly the active merchants inside, as GeoJSON, across the
antimeridian, filtered like /v1/nearby, paged by id with an honest total; bad boxes 400."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import h3
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.conftest import OPERATOR
from tests.deals_factory import create_deal, make_merchant, transition
from tests.factories import Seeded, merchant, seed
from tests.problems import assert_problem

HELSINKI = (24.90, 60.15, 24.98, 60.19)  # minLon, minLat, maxLon, maxLat
ORIGIN = {"Origin": "https://map-widget.example"}


def bbox(box: tuple[float, float, float, float]) -> str:
    return ",".join(repr(v) for v in box)


def inside(s: Seeded, box: tuple[float, float, float, float]) -> bool:
    min_lon, min_lat, max_lon, max_lat = box
    in_lon = min_lon <= s.lon <= max_lon if min_lon <= max_lon else (s.lon >= min_lon or s.lon <= max_lon)
    return min_lat <= s.lat <= max_lat and in_lon and s.status == "active"


def walk(client: FlaskClient, params: dict[str, Any], limit: int = 7) -> tuple[list[int], set[int]]:
    """Every page of a box query: the ids in order and the totals seen."""
    ids: list[int] = []
    totals: set[int] = set()
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/merchants", query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/geo+json"
        body = response.get_json(force=True)
        assert body["type"] == "FeatureCollection"
        for feature in body["features"]:
            lon, lat = feature["geometry"]["coordinates"]
            assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
            assert (lat, lon) == (feature["properties"]["lat"], feature["properties"]["lon"])
            assert feature["properties"]["attribution"] is None
            ids.append(feature["id"])
        totals.add(body["total"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, totals


@pytest.fixture
def town(engine: Engine) -> list[Seeded]:
    rng = random.Random(5)
    rows = [
        merchant(f"m{k}", rng.uniform(60.13, 60.21), rng.uniform(24.86, 25.02), rng.choice(["cafe", "bar"]))
        for k in range(80)
    ]
    rows += [
        merchant("edge", 60.15, 24.98),  # on a corner of HELSINKI
        merchant("closed", 60.17, 24.94, status="closed"),
        merchant("east of the line", 0.5, 179.99),
        merchant("west of the line", -0.5, -179.99),
        merchant("on the line", 0.0, 180.0),
        merchant("far", 10.0, 0.0),
    ]
    return seed(engine, rows)


@pytest.fixture
def crowded_town(engine: Engine, town: list[Seeded]) -> list[Seeded]:
    """The town and a crowd in a few hundred metres: enough merchants per H3 cell that the
    index counts clusters from its per-cell totals (lbs.geo.h3clusters)."""
    rng = random.Random(6)
    rows = [
        merchant(
            f"crowd{k}", rng.uniform(60.168, 60.172), rng.uniform(24.936, 24.944), rng.choice(["cafe", "bar"])
        )
        for k in range(120)
    ]
    return town + seed(engine, rows)


def test_a_box_holds_exactly_the_active_merchants_inside_paged_once(
    town: list[Seeded], client: FlaskClient
) -> None:
    ids, totals = walk(client, {"bbox": bbox(HELSINKI)})

    expected = sorted(s.id for s in town if inside(s, HELSINKI))
    assert ids == expected and totals == {len(expected)}
    assert "edge" in {s.name for s in town if s.id in ids} and len(expected) > 15


def test_a_box_across_the_antimeridian_takes_both_sides(town: list[Seeded], client: FlaskClient) -> None:
    box = (179.9, -1.0, -179.9, 1.0)

    ids, totals = walk(client, {"bbox": bbox(box)})

    names = {s.id: s.name for s in town}
    assert sorted(names[i] for i in ids) == ["east of the line", "on the line", "west of the line"]
    assert totals == {3}


def test_empty_and_whole_world_boxes(town: list[Seeded], client: FlaskClient) -> None:
    empty = client.get("/v1/merchants", query_string={"bbox": "-10,-10,-9,-9"}).get_json(force=True)
    assert empty["features"] == [] and empty["total"] == 0 and empty["next_cursor"] is None

    world = client.get("/v1/merchants", query_string={"bbox": "-180,-90,180,90"}).get_json(force=True)

    active = [s.id for s in town if s.status == "active"]
    assert world["total"] == len(active) == 85 and world["next_cursor"] is None
    assert [f["id"] for f in world["features"]] == sorted(active)


def test_filters_match_nearby(town: list[Seeded], client: FlaskClient) -> None:
    ids, _ = walk(client, {"bbox": bbox(HELSINKI), "category": "bar"})

    assert ids == sorted(s.id for s in town if inside(s, HELSINKI) and s.category == "bar")


def test_has_deal_keeps_the_merchants_with_a_claimable_deal_and_shows_it(client: FlaskClient) -> None:
    with_deal, key = make_merchant(client, 60.17, 24.94, name="With deal")
    without, _ = make_merchant(client, 60.171, 24.941, name="Without")
    deal = create_deal(client, key)
    transition(client, key, deal["id"], "publish")

    everyone = client.get("/v1/merchants", query_string={"bbox": bbox(HELSINKI)}).get_json(force=True)
    dealers = client.get("/v1/merchants", query_string={"bbox": bbox(HELSINKI), "has_deal": "true"})

    assert {f["id"] for f in everyone["features"]} == {with_deal, without}
    body = dealers.get_json(force=True)
    assert [f["id"] for f in body["features"]] == [with_deal] and body["total"] == 1
    assert body["features"][0]["properties"]["deal"]["id"] == deal["id"]


def test_open_now_keeps_the_open_ones_at_the_given_time(engine: Engine, client: FlaskClient) -> None:
    rows = [
        merchant("night", 60.17, 24.94).model_copy(update={"opening_hours": "Fr-Sa 18:00-02:00"}),
        merchant("office", 60.171, 24.941).model_copy(update={"opening_hours": "Mo-Fr 09:00-18:00"}),
        merchant("unknown", 60.172, 24.942),
    ]
    night, *_ = seed(engine, rows)
    query = {"bbox": bbox(HELSINKI), "open_now": "true", "at": "2026-11-27T23:00:00+02:00"}

    body = client.get("/v1/merchants", query_string=query).get_json(force=True)

    assert [f["id"] for f in body["features"]] == [night.id] and body["total"] == 1
    assert body["features"][0]["properties"]["open_now"] is True


@pytest.mark.parametrize(
    "value",
    [
        "24.9,60.2,24.98,60.15",  # latitudes inverted
        "24.9,60.15,24.98",  # three numbers
        "24.9,60.15,24.98,60.19,1",  # five
        "a,b,c,d",
        "24.9,-91,24.98,60.19",
        "-181,60.15,24.98,60.19",
        "nan,60.15,24.98,60.19",
        "",
    ],
)
def test_a_bad_box_is_a_400_naming_bbox_and_the_ranges(client: FlaskClient, value: str) -> None:
    body = assert_problem(client.get("/v1/merchants", query_string={"bbox": value}), 400, "bbox")
    assert "-180 to 180" in body["detail"] and "-90 to 90" in body["detail"]


def test_a_missing_box_or_foreign_cursor_is_a_400(town: list[Seeded], client: FlaskClient) -> None:
    assert_problem(client.get("/v1/merchants"), 400, "bbox")
    first = client.get("/v1/merchants", query_string={"bbox": bbox(HELSINKI), "limit": 2}).get_json(
        force=True
    )
    other = client.get("/v1/merchants", query_string={"bbox": "24,60,25,61", "cursor": first["next_cursor"]})
    assert_problem(other, 400, "cursor")


def test_the_box_read_allows_cross_origin_calls_and_the_create_does_not(client: FlaskClient) -> None:
    read = client.get("/v1/merchants", query_string={"bbox": bbox(HELSINKI)}, headers=ORIGIN)
    body = {"name": "x", "category": "bar", "lat": 60.17, "lon": 24.94}
    create = client.post("/v1/merchants", json=body, headers={**ORIGIN, **OPERATOR})

    assert read.headers.get("Access-Control-Allow-Origin") in {"*", ORIGIN["Origin"]}
    assert create.status_code == 201 and "Access-Control-Allow-Origin" not in create.headers


def test_clusters_count_every_merchant_of_the_box_once_per_cell(
    town: list[Seeded], client: FlaskClient
) -> None:
    everyone = client.get("/v1/merchants", query_string={"bbox": bbox(HELSINKI)}).get_json(force=True)

    body = client.get(
        "/v1/merchants", query_string={"bbox": bbox(HELSINKI), "cluster": "true", "zoom": 14}
    ).get_json(force=True)

    assert body["resolution"] == 8 and body["zoom"] == 14
    counts = {f["id"]: f["properties"]["count"] for f in body["features"]}
    assert sum(counts.values()) == body["total"] == everyone["total"]
    expected: dict[str, int] = {}
    for s in town:
        if inside(s, HELSINKI):
            # H3's hierarchy: the ancestor of the merchant's finest cell (the index's 11).
            cell = h3.cell_to_parent(h3.latlng_to_cell(s.lat, s.lon, 11), 8)
            expected[cell] = expected.get(cell, 0) + 1
    assert counts == expected
    assert all(
        f["properties"]["cluster"] is True and f["properties"]["with_deals"] == 0 for f in body["features"]
    )
    for f in body["features"]:  # each at its merchants' mean position, inside its cell's neighbourhood
        lon, lat = f["geometry"]["coordinates"]
        assert h3.grid_distance(h3.latlng_to_cell(lat, lon, 8), f["id"]) <= 1


def cluster_counts(
    merchants: list[Seeded], box: tuple[float, float, float, float], resolution: int, category: str | None
) -> dict[str, int]:
    """Per H3 cell, straight from h3: the merchants inside, in their finest cell's ancestor."""
    counts: dict[str, int] = {}
    for s in merchants:
        if inside(s, box) and category in (None, s.category):
            cell = h3.cell_to_parent(h3.latlng_to_cell(s.lat, s.lon, 11), resolution)
            counts[cell] = counts.get(cell, 0) + 1
    return counts


def clustered(client: FlaskClient, params: dict[str, Any], zoom: int) -> dict[str, Any]:
    response = client.get("/v1/merchants", query_string={**params, "cluster": "true", "zoom": zoom})
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json(force=True))


@pytest.mark.parametrize(
    ("box", "zoom", "category"),
    [
        (HELSINKI, 14, "bar"),
        (HELSINKI, 10, "cafe"),
        ((179.9, -1.0, -179.9, 1.0), 6, None),  # across the antimeridian
        ((-180.0, -90.0, 180.0, 90.0), 0, None),
        ((24.0, 59.0, 26.0, 61.0), 12, None),  # the whole town inside
    ],
)
def test_clusters_count_what_the_listing_holds(
    crowded_town: list[Seeded],
    client: FlaskClient,
    box: tuple[float, float, float, float],
    zoom: int,
    category: str | None,
) -> None:
    params = {"bbox": bbox(box), **({"category": category} if category else {})}
    listed, _ = walk(client, params, limit=100)

    body = clustered(client, params, zoom)

    counts = {f["id"]: f["properties"]["count"] for f in body["features"]}
    assert counts == cluster_counts(crowded_town, box, body["resolution"], category)
    assert sum(counts.values()) == body["total"] == len(listed) > 0
    assert [f["properties"]["count"] for f in body["features"]] == sorted(counts.values(), reverse=True)


def test_clusters_follow_moves_and_closures(crowded_town: list[Seeded], client: FlaskClient) -> None:
    town = crowded_town
    clustered(client, {"bbox": bbox(HELSINKI)}, 10)  # the index and its totals exist before the writes
    in_town = [s for s in town if inside(s, HELSINKI)]
    moved, closed = in_town[0], in_town[1]
    for merchant_id, change in ((moved.id, {"lat": 10.0, "lon": 0.0}), (closed.id, {"status": "closed"})):
        response = client.patch(f"/v1/merchants/{merchant_id}", json=change, headers=OPERATOR)
        assert response.status_code == 200, response.get_data(as_text=True)

    body = clustered(client, {"bbox": bbox(HELSINKI)}, 10)

    (only,) = body["features"]
    assert only["properties"]["count"] == body["total"] == len(in_town) - 2
    world = clustered(client, {"bbox": "-180,-90,180,90"}, 3)
    assert world["total"] == sum(s.status == "active" for s in town) - 1


def test_clusters_of_merchants_with_a_claimable_deal(client: FlaskClient) -> None:
    _, key = make_merchant(client, 60.17, 24.94, name="With deal")
    make_merchant(client, 60.1701, 24.9401, name="Without")
    transition(client, key, create_deal(client, key)["id"], "publish")

    body = clustered(client, {"bbox": bbox(HELSINKI), "has_deal": "true"}, 14)

    (only,) = body["features"]
    assert only["properties"]["count"] == only["properties"]["with_deals"] == body["total"] == 1


def test_clusters_count_the_merchants_with_deals(client: FlaskClient) -> None:
    _, key = make_merchant(client, 60.17, 24.94, name="With deal")
    make_merchant(client, 60.1701, 24.9401, name="Without")
    transition(client, key, create_deal(client, key)["id"], "publish")

    body = client.get(
        "/v1/merchants", query_string={"bbox": bbox(HELSINKI), "cluster": "true", "zoom": 10}
    ).get_json(force=True)

    (only,) = body["features"]
    assert (
        body["resolution"] == 5 and only["properties"]["count"] == 2 and only["properties"]["with_deals"] == 1
    )


def test_a_kept_cluster_answer_follows_deals_and_time(client: FlaskClient) -> None:
    """Cluster answers are kept per worker (lbs.services.view_cache): a kept one must not
    outlive a deal's publication, nor be served for an ``at`` before the deal began."""
    _, key = make_merchant(client, 60.17, 24.94, name="With deal")
    make_merchant(client, 60.1701, 24.9401, name="Without")
    deal = create_deal(client, key)
    params = {"bbox": bbox(HELSINKI)}

    def with_deals(**at: str) -> int:
        (only,) = clustered(client, {**params, **at}, 10)["features"]
        return int(only["properties"]["with_deals"])

    assert with_deals() == with_deals() == 0  # a draft; the second answer is the kept one
    views = client.application.extensions["lbs"].live_index.views
    assert len(views) == 1
    transition(client, key, deal["id"], "publish")
    assert with_deals() == 1
    assert with_deals(at=deal["valid_from"]) == 1
    before = datetime.fromisoformat(deal["valid_from"]) - timedelta(seconds=1)
    assert with_deals(at=before.isoformat()) == 0
    assert with_deals() == 1


def test_clusters_need_a_zoom_and_take_no_cursor(client: FlaskClient) -> None:
    query = {"bbox": bbox(HELSINKI), "cluster": "true"}
    assert_problem(client.get("/v1/merchants", query_string=query), 400, "zoom")
    assert_problem(client.get("/v1/merchants", query_string={**query, "zoom": 23}), 400, "zoom")
    assert_problem(
        client.get("/v1/merchants", query_string={**query, "zoom": 5, "cursor": "x"}), 400, "cursor"
    )
