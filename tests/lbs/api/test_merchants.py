"""Merchants over HTTP: create, read, update; bad bodies are 4xx problems that write nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR
from tests.factories import Seeded, count_merchants, merchant, seed
from tests.problems import PROBLEM_JSON, assert_problem

FULL = {
    "name": "Café Regatta",
    "category": "cafe",
    "lat": 60.1834,
    "lon": 24.9042,
    "address": "Merikannontie 8, Helsinki",
    "phone": "+358 40 123 4567",
    "website": "https://example.com/regatta",
    "price_level": 2,
    "opening_hours": "Mo-Su 08:00-21:00",
}
# What a read adds to the record (GET /v1/merchants/{id}): its hours.
HOURS = {"open_now", "closes_at", "next_open_at", "hours"}
JSON_HEADERS = {**OPERATOR, "Content-Type": "application/json"}


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM merchants ORDER BY id")).all()
        keys = connection.execute(text("SELECT * FROM merchant_api_keys ORDER BY id")).all()
    return [tuple(r) for r in rows] + [tuple(k) for k in keys]


def test_operator_creates_a_merchant_anyone_can_read(engine: Engine, client: FlaskClient) -> None:
    response = client.post("/v1/merchants", json=FULL, headers=OPERATOR)

    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert {k: created[k] for k in FULL} == FULL
    assert created["timezone"] == "Europe/Helsinki"
    assert created["status"] == "active"
    read = client.get(f"/v1/merchants/{created['id']}").get_json()
    # A read adds the rating (none yet) and the hours: now, and this week's.
    assert {k: read[k] for k in created} == created
    assert set(read) - set(created) == {*HOURS, "rating"}
    assert read["rating"] is None
    nearby = client.get("/v1/nearby?lat=60.1834&lon=24.9042&radius_m=5").get_json()
    assert [i["merchant"]["id"] for i in nearby["items"]] == [created["id"]]
    assert count_merchants(engine) == 1


def test_a_minimal_merchant_needs_name_category_and_position(engine: Engine, client: FlaskClient) -> None:
    response = client.post(
        "/v1/merchants",
        json={"name": "Kiosk", "category": "other", "lat": -17.0, "lon": 179.99},
        headers=OPERATOR,
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["timezone"] == "Pacific/Fiji"
    assert count_merchants(engine) == 1


def test_unknown_merchant_is_a_404_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/merchants/424242"), 404)
    assert_problem(client.get("/v1/merchants/me-not"), 404)
    assert_problem(client.patch("/v1/merchants/424242", json={"name": "x"}, headers=OPERATOR), 404)
    assert_problem(client.get("/v1/merchants/0"), 400, field="merchant_id")
    assert_problem(client.get(f"/v1/merchants/{2**63}"), 400, field="merchant_id")


def test_public_read_shows_inactive_merchants_with_their_status(engine: Engine, client: FlaskClient) -> None:
    (shop,) = seed(engine, [merchant("paused", 1.0, 1.0, status="inactive")])

    body = client.get(f"/v1/merchants/{shop.id}").get_json()

    assert (body["id"], body["status"]) == (shop.id, "inactive")


def test_moving_a_merchant_moves_its_time_zone(engine: Engine, client: FlaskClient) -> None:
    (shop,) = seed(engine, [merchant("traveller", 60.17, 24.94)])

    moved = client.patch(f"/v1/merchants/{shop.id}", json={"lat": 35.68, "lon": 139.76}, headers=OPERATOR)

    assert moved.status_code == 200
    assert (moved.get_json()["timezone"], moved.get_json()["lat"]) == ("Asia/Tokyo", 35.68)
    assert client.get(f"/v1/merchants/{shop.id}").get_json()["timezone"] == "Asia/Tokyo"


def test_patch_changes_only_the_fields_sent(engine: Engine, client: FlaskClient) -> None:
    created = seed(engine, [merchant("Old name", 60.17, 24.94, "bar")])[0]
    before = client.get(f"/v1/merchants/{created.id}").get_json()

    after = client.patch(
        f"/v1/merchants/{created.id}", json={"name": "New name", "price_level": 3}, headers=OPERATOR
    ).get_json()

    assert (after["name"], after["price_level"]) == ("New name", 3)
    # A write's answer is the record without the rating and the hours a read adds.
    added = {"rating", *HOURS}
    unchanged = {k: v for k, v in before.items() if k not in {"name", "price_level", "updated_at", *added}}
    assert {k: after[k] for k in unchanged} == unchanged


# (body as raw text, the field the problem must name or None when the body as a whole is wrong)
BAD_CREATE = [
    (json.dumps({k: v for k, v in FULL.items() if k != "name"}), "name"),
    (json.dumps({k: v for k, v in FULL.items() if k != "lat"}), "lat"),
    (json.dumps({**FULL, "name": None}), "name"),
    (json.dumps({**FULL, "name": ""}), "name"),
    (json.dumps({**FULL, "name": 5}), "name"),
    (json.dumps({**FULL, "name": "x" * 201}), "name"),
    (json.dumps({**FULL, "category": "pub"}), "category"),
    (json.dumps({**FULL, "category": "Cafe"}), "category"),
    (json.dumps({**FULL, "category": None}), "category"),
    (json.dumps({**FULL, "lat": "sixty"}), "lat"),
    (json.dumps({**FULL, "lat": 90.5}), "lat"),
    (json.dumps({**FULL, "lat": -91}), "lat"),
    (json.dumps({**FULL, "lat": None}), "lat"),
    (json.dumps({**FULL, "lon": 180.0001}), "lon"),
    (json.dumps({**FULL, "lon": [24.9]}), "lon"),
    (json.dumps({**FULL, "lat": 1}).replace('"lat": 1', '"lat": NaN'), "lat"),
    (json.dumps({**FULL, "lat": 1}).replace('"lat": 1', '"lat": Infinity'), "lat"),
    (json.dumps({**FULL, "lat": 1}).replace('"lat": 1', '"lat": 1e400'), "lat"),
    (json.dumps({**FULL, "lat": 1}).replace('"lat": 1', '"lat": 1' + "0" * 400), "lat"),
    (json.dumps({**FULL, "opening_hours": "Mo-Fr 25:00-26:00"}), "opening_hours"),
    (json.dumps({**FULL, "opening_hours": "whenever"}), "opening_hours"),
    (json.dumps({**FULL, "price_level": 0}), "price_level"),
    (json.dumps({**FULL, "price_level": 5}), "price_level"),
    (json.dumps({**FULL, "price_level": "cheap"}), "price_level"),
    (json.dumps({**FULL, "phone": "call me"}), "phone"),
    (json.dumps({**FULL, "website": "not a url"}), "website"),
    (json.dumps({**FULL, "status": "deleted"}), "status"),
    (json.dumps({**FULL, "rating": 5}), "rating"),
    (json.dumps({**FULL, "id": 7}), "id"),
    (json.dumps([FULL]), None),
    ("null", None),
    ('"a merchant"', None),
    ("{not json", None),
    ("", None),
]


@pytest.mark.parametrize(("raw", "field"), BAD_CREATE, ids=[f"{f}:{r[:20]}" for r, f in BAD_CREATE])
def test_bad_create_body_is_a_problem_and_writes_nothing(
    raw: str, field: str | None, engine: Engine, client: FlaskClient
) -> None:
    seed(engine, [merchant("already there", 1.0, 1.0)])
    before = snapshot(engine)

    response = client.post("/v1/merchants", data=raw, headers=JSON_HEADERS)

    assert_problem(response, 400, field=field)
    assert snapshot(engine) == before


def test_create_without_a_json_content_type_writes_nothing(engine: Engine, client: FlaskClient) -> None:
    response = client.post(
        "/v1/merchants", data=json.dumps(FULL), headers={**OPERATOR, "Content-Type": "text/plain"}
    )

    assert_problem(response)
    assert count_merchants(engine) == 0


BAD_PATCH = [
    ({"name": None}, "name"),
    ({"category": None}, "category"),
    ({"lat": None}, "lat"),
    ({"lon": None}, "lon"),
    ({"status": None}, "status"),
    ({"name": ""}, "name"),
    ({"lat": 91}, "lat"),
    ({"lon": "east"}, "lon"),
    ({"category": "pub"}, "category"),
    ({"status": "deleted"}, "status"),
    ({"opening_hours": "nonsense"}, "opening_hours"),
    ({"price_level": 9}, "price_level"),
    ({"website": "ftp//nope"}, "website"),
    # Longer than the column: a 500 on PostgreSQL until schemathesis found it (issue 16).
    ({"website": "https://example.com/" + "a" * 481}, "website"),
    ({"website": "https://" + "a" * 63 + "." + "b" * 424 + ".com"}, "website"),  # 500; 501 with its "/"
    ({"lon": False}, "lon"),  # a boolean is not a number
    ({"foo": 1}, "foo"),
    ({"timezone": "UTC"}, "timezone"),
    ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ({"lat": 10.0, "lon": 200.0}, "lon"),
    ([{"name": "x"}], None),
]


@pytest.mark.parametrize(
    ("body", "field"), BAD_PATCH, ids=[f"{f}:{json.dumps(b)[:20]}" for b, f in BAD_PATCH]
)
def test_bad_patch_body_is_a_problem_and_changes_nothing(
    body: Any, field: str | None, engine: Engine, client: FlaskClient
) -> None:
    (shop,) = seed(engine, [merchant("steady", 10.0, 10.0)])
    before = snapshot(engine)

    response = client.patch(f"/v1/merchants/{shop.id}", json=body, headers=OPERATOR)

    assert_problem(response, 400, field=field)
    assert snapshot(engine) == before
    assert client.get("/v1/nearby?lat=10&lon=10&radius_m=1").get_json()["total"] == 1


def test_patch_with_a_non_json_body_changes_nothing(engine: Engine, client: FlaskClient) -> None:
    (shop,) = seed(engine, [merchant("steady", 10.0, 10.0)])
    before = snapshot(engine)

    for raw, content_type in [
        ("{lat: 1}", "application/json"),
        ("lat=1", "application/x-www-form-urlencoded"),
    ]:
        response = client.patch(
            f"/v1/merchants/{shop.id}", data=raw, headers={**OPERATOR, "Content-Type": content_type}
        )
        assert_problem(response)

    assert snapshot(engine) == before


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from([*FULL, "status", "id", "timezone"]) | st.text(max_size=8)


@pytest.fixture
def shop(engine: Engine) -> Seeded:
    return seed(engine, [merchant("fuzzed", 0.0, 0.0)])[0]


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(FIELDS, JSON_VALUES, max_size=4) | JSON_VALUES)
def test_random_patch_bodies_never_cause_a_500(
    engine: Engine, client: FlaskClient, shop: Seeded, body: Any
) -> None:
    # Examples share one merchant: each either applies cleanly or changes nothing.
    before = snapshot(engine)

    response = client.patch(f"/v1/merchants/{shop.id}", data=json.dumps(body), headers=JSON_HEADERS)

    assert response.status_code in {200, 400}, (body, response.get_data(as_text=True))
    if response.status_code == 400:
        assert response.mimetype == PROBLEM_JSON
        assert snapshot(engine) == before


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.fixed_dictionaries({}, optional={k: JSON_VALUES for k in FULL}) | JSON_VALUES)
def test_random_create_bodies_never_cause_a_500(engine: Engine, client: FlaskClient, body: Any) -> None:
    before = count_merchants(engine)

    response = client.post("/v1/merchants", data=json.dumps(body), headers=JSON_HEADERS)

    assert response.status_code in {201, 400}, (body, response.get_data(as_text=True))
    if response.status_code == 400:
        assert response.mimetype == PROBLEM_JSON
        assert count_merchants(engine) == before
