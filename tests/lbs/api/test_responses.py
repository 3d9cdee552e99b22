"""Every body is written by the model its operation declares (issue 16, defect 9's root cause:
the *Out models fed only the document while views built dicts of their own)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from pydantic import ValidationError

from lbs.api.responses import JSON, Media, Out, serve
from lbs.api.schemas import UserOut
from tests.deals_factory import bearer, make_user


class PairOut(Out):
    a: int
    b: str | None = None


PNG = "image/png"
RESPONSES: dict[Any, Any] = {200: PairOut, 204: None, 201: Media("pair or png", {JSON: PairOut, PNG: None})}


@pytest.fixture
def context() -> Any:
    with Flask(__name__).test_request_context("/"):
        yield


def test_a_body_is_validated_and_written_by_its_model(context: None) -> None:
    response = serve({"a": "7"}, RESPONSES)

    assert response.mimetype == JSON
    assert response.get_data(as_text=True) == '{"a":7}'  # coerced by the model; unset b left out
    with pytest.raises(ValidationError, match="extra"):
        serve({"a": 1, "secret": "x"}, RESPONSES)  # a field the document does not show
    with pytest.raises(ValidationError):
        serve({"a": "not a number"}, RESPONSES)


def test_a_status_or_media_type_not_declared_is_an_error(context: None) -> None:
    with pytest.raises(TypeError, match="status 202"):
        serve(({"a": 1}, 202), RESPONSES)
    with pytest.raises(TypeError, match="image/gif"):
        serve(Response(b"GIF89a", status=201, mimetype="image/gif"), RESPONSES)
    with pytest.raises(TypeError, match="text/html"):
        serve(Response("<p>", mimetype="text/html"), RESPONSES)  # 200 declares a model, not a Response

    assert serve(Response(b"\x89PNG", status=201, mimetype=PNG), RESPONSES).mimetype == PNG
    assert serve(({"a": 1}, 201, {"Content-Type": JSON}), RESPONSES).get_data() == b'{"a":1}'
    assert serve(("", 204), RESPONSES).status_code == 204


def test_the_app_serves_through_the_models(client: FlaskClient) -> None:
    _, token = make_user(client)
    created = client.post("/v1/users")
    rotated = client.post("/v1/me/token", headers=bearer(token))

    for response in (created, rotated):
        assert response.mimetype == JSON
        assert UserOut.model_validate_json(response.get_data()).model_dump() == response.get_json()


def test_every_operation_declares_a_success_with_its_media_types(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]

    for path, item in document["paths"].items():
        for method, operation in item.items():
            successes = {s: r for s, r in operation["responses"].items() if s[0] in "23"}
            assert successes, f"{method.upper()} {path} declares no success"
            for status, response in successes.items():
                if status in ("204", "304"):
                    continue
                assert response.get("content"), (method, path, status)
                for media in response["content"].values():
                    ref = media["schema"].get("$ref")
                    assert ref is None or ref.rsplit("/", 1)[1] in schemas, (method, path, ref)
    assert set(document["paths"]["/v1/merchants"]) == {"get", "post"}  # two blueprints, one path
    assert set(document["components"]["securitySchemes"]) == {"operator", "merchant", "user"}
