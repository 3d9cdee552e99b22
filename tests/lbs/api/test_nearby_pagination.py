"""Cursor pagination over HTTP: every result exactly once, in order; a cursor is bound to its query."""

from __future__ import annotations

import random

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.conftest import OPERATOR
from tests.factories import merchant, points_of, scatter, seed
from tests.lbs.api.pages import walk_nearby
from tests.oracle import assert_nearby_exact, destination, expected_order
from tests.problems import assert_problem

ROUNDING_M = 0.005 + 1e-6
CENTRE = {"lat": -33.8688, "lon": 151.2093}


def test_walk_over_thousands_yields_each_result_once_in_order(engine: Engine, client: FlaskClient) -> None:
    rng = random.Random(11)
    rows = scatter(rng, CENTRE["lat"], CENTRE["lon"], 3000, 2500.0, inactive_share=0.05)
    # 250 merchants on one spot: pages must cut through a run of equal distances.
    rows += [
        merchant(f"mall{i}", *destination(CENTRE["lat"], CENTRE["lon"], 45.0, 700.0)) for i in range(250)
    ]
    seeded = seed(engine, rows)
    sizes = [rng.choice([1, 3, 50, 100, 100, 100]) for _ in range(5000)]

    walk = walk_nearby(client, {**CENTRE, "radius_m": 3000}, limits=lambda page: sizes[page])

    points = points_of(seeded)
    assert walk.ids == expected_order(points, CENTRE["lat"], CENTRE["lon"], 3000)
    assert_nearby_exact(
        points, CENTRE["lat"], CENTRE["lon"], 3000, walk.ids, walk.totals[0], walk.distances_m, ROUNDING_M
    )
    assert set(walk.totals) == {len(walk.ids)}
    assert len(walk.ids) > 3000


def test_the_last_page_has_no_next_cursor(engine: Engine, client: FlaskClient) -> None:
    seed(engine, [merchant(f"m{i}", *destination(0.0, 0.0, i * 36.0, 100.0)) for i in range(10)])

    exactly_full = client.get("/v1/nearby?lat=0&lon=0&radius_m=200&limit=10").get_json()
    not_full = client.get("/v1/nearby?lat=0&lon=0&radius_m=200&limit=11").get_json()
    empty = client.get("/v1/nearby?lat=0&lon=0&radius_m=50&limit=10").get_json()

    assert (len(exactly_full["items"]), exactly_full["next_cursor"]) == (10, None)
    assert (len(not_full["items"]), not_full["next_cursor"]) == (10, None)
    assert (empty["items"], empty["next_cursor"], empty["total"]) == ([], None, 0)


def test_format_and_limit_may_change_between_pages(engine: Engine, client: FlaskClient) -> None:
    seeded = seed(engine, scatter(random.Random(5), 0.0, 0.0, 60, 900.0, inactive_share=0.0))
    first = client.get("/v1/nearby?lat=0&lon=0&limit=7").get_json()

    rest = client.get(f"/v1/nearby?lat=0&lon=0&limit=100&format=geojson&cursor={first['next_cursor']}")

    assert rest.status_code == 200
    ids = [i["merchant"]["id"] for i in first["items"]] + [
        f["id"] for f in rest.get_json(force=True)["features"]
    ]
    assert ids == expected_order(points_of(seeded), 0.0, 0.0, 1000.0)


@pytest.mark.parametrize(
    "changed",
    [{"lat": 0.001}, {"lon": 0.001}, {"radius_m": 999}, {"category": "cafe"}, {"sort": "distance"}],
    ids=lambda c: next(iter(c)),
)
def test_a_cursor_reused_with_another_query_is_rejected(
    changed: dict[str, object], engine: Engine, client: FlaskClient
) -> None:
    seed(engine, scatter(random.Random(6), 0.0, 0.0, 100, 900.0))
    params = {"lat": 0.0, "lon": 0.0, "radius_m": 1000, "limit": 5, "category": "bar,cafe,bakery,grocery"}
    cursor = client.get("/v1/nearby", query_string=params).get_json()["next_cursor"]
    assert cursor is not None

    response = client.get("/v1/nearby", query_string={**params, **changed, "cursor": cursor})

    body = assert_problem(response, 400, field="cursor")
    assert "cursor" in body["detail"]


def test_a_cursor_survives_reordering_the_category_list(engine: Engine, client: FlaskClient) -> None:
    seeded = seed(engine, scatter(random.Random(8), 0.0, 0.0, 200, 900.0))
    first = client.get("/v1/nearby?lat=0&lon=0&limit=3&category=cafe,bar").get_json()

    rest = client.get(f"/v1/nearby?lat=0&lon=0&limit=100&category=bar,cafe&cursor={first['next_cursor']}")

    assert rest.status_code == 200, rest.get_data(as_text=True)
    ids = [i["merchant"]["id"] for i in first["items"] + rest.get_json()["items"]]
    assert ids == expected_order(points_of(seeded, ["cafe", "bar"]), 0.0, 0.0, 1000.0)


def test_writes_during_a_walk_neither_repeat_nor_skip_earlier_results(
    engine: Engine, client: FlaskClient
) -> None:
    rows = [merchant(f"m{i}", *destination(0.0, 0.0, i * 7.0, 10.0 * (i + 1))) for i in range(40)]
    seeded = seed(engine, rows)
    first = client.get("/v1/nearby?lat=0&lon=0&radius_m=1000&limit=20").get_json()
    before = [s.id for s in seeded[:20]]
    assert [i["merchant"]["id"] for i in first["items"]] == before

    # A merchant moves from beyond the cursor to before it; one appears beyond it.
    moved = seeded[30].id
    assert (
        client.patch(f"/v1/merchants/{moved}", json={"lat": 0.0, "lon": 0.0}, headers=OPERATOR).status_code
        == 200
    )
    (late,) = seed(engine, [merchant("late", *destination(0.0, 0.0, 0.0, 405.0))])
    rest = client.get(
        f"/v1/nearby?lat=0&lon=0&radius_m=1000&limit=100&cursor={first['next_cursor']}"
    ).get_json()

    after = [i["merchant"]["id"] for i in rest["items"]]
    assert after == [s.id for s in seeded[20:] if s.id != moved] + [late.id]
    assert rest["total"] == 41
