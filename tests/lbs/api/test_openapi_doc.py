"""The OpenAPI document declares errors as they are served (issue 16, defect 9, first part):
problem+json, and the statuses any operation can answer."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from lbs.api.openapi_doc import RATE_LIMITED
from tests.deals_factory import bearer, make_user


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_every_error_is_declared_as_problem_json(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()

    assert "ValidationErrorModel" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert list(response["content"]) == ["application/problem+json"], (where, status)
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
        declared = set(operation["responses"])
        assert {"500", "503"} <= declared, where
        assert "Retry-After" in operation["responses"]["503"]["headers"], where
        if "requestBody" in operation:
            assert "413" in declared, where
        if operation.get("security"):
            assert {"401", "403"} <= declared, where
        if (method, path) in RATE_LIMITED:
            assert "429" in declared, where


def test_what_is_served_is_what_is_declared(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    _, token = make_user(client)
    served = {
        ("get", "/v1/nearby", "400"): client.get("/v1/nearby?lat=91&lon=0"),
        ("post", "/v1/events", "401"): client.post("/v1/events", json={"events": []}),
        ("post", "/v1/events", "413"): client.post(
            "/v1/events", data=" " * 200_000, content_type="application/json", headers=bearer(token)
        ),
        ("get", "/metrics", "401"): client.get("/metrics"),
    }
    for (method, path, status), response in served.items():
        declared = document["paths"][path][method]["responses"][status]
        assert str(response.status_code) == status
        assert response.mimetype in declared["content"], (method, path, status)


def test_the_document_describes_fields_paging_and_the_event_feed(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]

    def parameters(path: str) -> dict[str, Any]:
        return {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}

    # fields: the names each read takes; the items they trim require only their id.
    for path, also in (
        ("/v1/nearby", "distance_m"),
        ("/v1/merchants", "deal"),
        ("/v1/merchants/{merchant_id}", "hours"),
        ("/v1/merchants/me", "open_now"),
    ):
        names = parameters(path)["fields"]["schema"]["items"]["enum"]
        assert {"id", "name", "hours", also} <= set(names), path
    assert schemas["NearbyItemOut"]["required"] == ["merchant"]
    assert schemas["MerchantPartOut"]["required"] == ["id"] and schemas["MapPlaceOut"]["required"] == ["id"]
    assert "default" not in schemas["MerchantPartOut"]["properties"]["name"]
    # Writes answer the whole record.
    assert "name" in schemas["MerchantOut"]["required"]
    # One paging vocabulary: cursor in, next_cursor out; the old names deprecated.
    for path, old in (
        ("/v1/me/vouchers", "before"),
        ("/v1/merchant/vouchers", "before"),
        ("/v1/merchant/events", "after"),
    ):
        assert "cursor" in parameters(path) and parameters(path)[old]["deprecated"] is True, path
    assert "next_cursor" in schemas["VoucherListOut"]["required"]
    assert schemas["VoucherListOut"]["properties"]["next_before"]["deprecated"] is True
    assert schemas["EventFeedOut"]["properties"]["next_after"]["deprecated"] is True
    feed = document["paths"]["/v1/merchant/events"]["get"]
    assert feed["summary"].startswith("Merchant: its clicks, claims and redemptions")
    assert "next_cursor" in feed["description"]
    assert schemas["EventFeedOut"]["required"] == ["items", "next_cursor", "next_after"]
    # GeoJSON pages say when they were evaluated, and why each place ranks where it does.
    assert "at" in schemas["NearbyCollectionOut"]["required"]
    assert "reasons" in schemas["NearbyPlaceOut"]["properties"]
