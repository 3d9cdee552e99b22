"""Bad input to GET /v1/nearby: a 400 problem naming the parameter, never a 500."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbs.services.nearby_pages import NearbyQuery, encode_cursor
from tests.factories import NOW
from tests.problems import PROBLEM_JSON, assert_problem

GOOD = {"lat": "60.17", "lon": "24.94"}
NOT_NUMBERS = [
    "",
    " ",
    "abc",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "-1e400",
    "0x10",
    "1,5",
    "5m",
]

# parameter -> (values that must be rejected, words the detail must show: the allowed range)
NUMERIC = {
    "lat": ([*NOT_NUMBERS, "90.000001", "-90.000001", "91", "-91", "1000"], ["-90", "90"]),
    "lon": ([*NOT_NUMBERS, "180.000001", "-180.000001", "181", "-181", "360"], ["-180", "180"]),
    "radius_m": (
        [*NOT_NUMBERS, "0", "-0", "0.0", "-1", "-0.001", "50000.001", "50001", "1e6"],
        ["0", "50000"],
    ),
    "limit": ([*NOT_NUMBERS, "0", "-1", "101", "1000", "1.5", "1e1"], ["1", "100"]),
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


OTHER = {
    "cursor": [
        "!!!",
        "abc",
        "a" * 513,
        _b64(b"not json"),
        _b64(b"[1, 2]"),
        _b64(b"42"),
        _b64(b"\xff\xfe"),
        _b64(json.dumps({"q": "0", "d": "0x0p+0"}).encode()),
        _b64(json.dumps({"q": "0", "d": "zz", "i": 1}).encode()),
        _b64(json.dumps({"q": "0", "d": 5, "i": [1]}).encode()),
    ],
    "category": ["", ",", " , ", "Cafe", "pub", "cafe,pub", "cafe;bar", "x" * 401],
    "sort": ["", "best", "DISTANCE", "nearest", "distance,relevance"],
    "format": ["", "xml", "GEOJSON", "geo+json", "csv"],
    "open_now": ["", "maybe", "2", "open"],
    "has_deal": ["", "perhaps", "-1"],
}


def _bad(
    client: FlaskClient, query: dict[str, str], field: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = client.get("/v1/nearby?" + urlencode(query), headers=headers)
    return assert_problem(response, 400, field=field)


@pytest.mark.parametrize("field", sorted(NUMERIC))
def test_numeric_parameter_out_of_range_or_not_a_number(field: str, client: FlaskClient) -> None:
    values, allowed = NUMERIC[field]
    for value in values:
        body = _bad(client, {**GOOD, field: value}, field)
        for word in allowed:
            assert word in body["detail"], f"{field}={value!r}: detail {body['detail']!r} lacks the range"


@pytest.mark.parametrize("field", ["lat", "lon"])
def test_missing_position_is_named(field: str, client: FlaskClient) -> None:
    query = dict(GOOD)
    del query[field]

    body = _bad(client, query, field)

    assert "required" in body["detail"].lower()


def test_nothing_at_all_names_a_missing_position(client: FlaskClient) -> None:
    body = assert_problem(client.get("/v1/nearby"), 400)

    assert body["field"] in {"lat", "lon"}


@pytest.mark.parametrize("field", sorted(OTHER))
def test_bad_values_of_other_parameters(field: str, client: FlaskClient) -> None:
    for value in OTHER[field]:
        _bad(client, {**GOOD, field: value}, field)


def test_a_crafted_cursor_for_this_query_is_not_a_500(client: FlaskClient) -> None:
    query = NearbyQuery(lat=60.17, lon=24.94, radius_m=1000.0, limit=20, at=NOW, sort="relevance")
    for chord2, merchant_id in [(float("nan"), 1), (float("inf"), 1), (-1.0, -(2**70)), (0.0, 2**70)]:
        cursor = encode_cursor(query, chord2, merchant_id)

        response = client.get("/v1/nearby", query_string={**GOOD, "cursor": cursor})

        assert response.status_code < 500, response.get_data(as_text=True)
        if response.status_code >= 400:
            assert_problem(response, field="cursor")


@pytest.mark.parametrize("name", ["foo", "radius", "lng", "open", "LAT"])
def test_unknown_parameters_are_named(name: str, client: FlaskClient) -> None:
    _bad(client, {**GOOD, name: "1"}, name)


def test_problems_stay_problem_json_when_geojson_is_asked_for(client: FlaskClient) -> None:
    _bad(client, {**GOOD, "lat": "91"}, "lat", headers={"Accept": "application/geo+json"})
    _bad(client, {**GOOD, "lat": "91", "format": "geojson"}, "lat")


def test_unknown_route_and_wrong_method_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/nowhere"), 404)
    assert_problem(client.get("/v1/nearby/extra"), 404)
    assert_problem(client.delete("/v1/nearby?lat=1&lon=1"), 405)
    assert_problem(client.post("/v1/nearby", json={"lat": 1, "lon": 1}), 405)


NAMES = st.sampled_from([*GOOD, "radius_m", "limit", "cursor", "category", "sort", "format"]) | st.text(
    max_size=8
)
VALUES = st.text(max_size=30) | st.floats().map(repr) | st.integers().map(str) | st.sampled_from(NOT_NUMBERS)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(NAMES, VALUES, max_size=6), st.booleans())
def test_random_query_strings_never_cause_a_500(
    client: FlaskClient, params: dict[str, str], with_position: bool
) -> None:
    # The app and its database are read-only here, so examples may share them.
    query = {**(GOOD if with_position else {}), **params}
    response = client.get("/v1/nearby?" + urlencode(query, quote_via=quote))

    assert response.status_code < 500, (query, response.get_data(as_text=True))
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM_JSON
        assert response.get_json(force=True).get("field"), query


def test_an_unknown_category_is_answered_with_the_taxonomy(client: FlaskClient) -> None:
    body = _bad(client, {**GOOD, "category": "cafe,pub"}, "category")

    for name in ("cafe", "restaurant", "bakery", "other"):
        assert name in body["detail"], body["detail"]
