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
