"""Headers for browsers and caches (issue 16, defect 10): nosniff everywhere, a CSP and no
framing on the pages (but /map may be framed by the allowed origins), no-store on what
carries secrets, CORS only on reads, /metrics for the operator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from lbs.config import Settings
from tests.conftest import OPERATOR
from tests.deals_factory import bearer, claim, create_deal, make_merchant, make_user
from tests.problems import assert_problem

ORIGIN = {"Origin": "https://map-widget.example"}


def test_every_answer_says_nosniff(client: FlaskClient) -> None:
    for response in (
        client.get("/v1/nearby?lat=60.17&lon=24.94"),
        client.get("/v1/nearby?lat=600&lon=24.94"),  # a problem
        client.get("/widget.js"),
        client.get("/"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.request.path


def test_the_pages_have_a_policy_and_only_the_map_may_be_framed(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(
        cors_origins="https://kahvila.example", map_tiles_url="https://{s}.tile.example/{z}/{x}/{y}.png"
    ).test_client()

    for path in ("/", "/docs/swagger", "/merchant"):
        page = client.get(path)
        assert page.mimetype == "text/html"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
    map_page = client.get("/map")
    policy = map_page.headers["Content-Security-Policy"]
    assert "frame-ancestors https://kahvila.example" in policy
    assert "script-src 'self';" in policy and "https://*.tile.example" in policy
    assert "X-Frame-Options" not in map_page.headers


def test_secrets_and_personal_answers_are_not_stored_public_reads_are(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    created = client.post("/v1/users")
    user = created.get_json()["token"]
    voucher = claim(client, user, deal["id"], "headers-1")
    issued = client.post(f"/v1/merchants/{merchant_id}/api-keys", headers=OPERATOR)

    assert created.headers["Cache-Control"] == "no-store"  # the token
    assert issued.headers["Cache-Control"] == "no-store"  # an API key
    for path in ("/v1/me/vouchers", f"/v1/me/vouchers/{voucher['id']}", "/v1/nearby?lat=60.17&lon=24.94"):
        assert client.get(path, headers=bearer(user)).headers["Cache-Control"] == "no-store", path
    assert "no-store" not in client.get(f"/v1/merchants/{merchant_id}").headers.get("Cache-Control", "")


def test_cors_headers_are_on_reads_not_on_writes(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)

    read = client.get(f"/v1/merchants/{merchant_id}", headers=ORIGIN)
    write = client.patch(
        f"/v1/merchants/{merchant_id}", json={"name": "New"}, headers={**ORIGIN, **bearer(key)}
    )

    assert read.headers.get("Access-Control-Allow-Origin") in {"*", ORIGIN["Origin"]}
    assert write.status_code == 200
    assert "Access-Control-Allow-Origin" not in write.headers


def test_metrics_are_the_operators_unless_made_public(
    client: FlaskClient, make_app: Callable[..., OpenAPI]
) -> None:
    _, key = make_merchant(client)
    _, user = make_user(client)

    assert_problem(client.get("/metrics"), 401)
    assert_problem(client.get("/metrics", headers=bearer(key)), 403)
    assert_problem(client.get("/metrics", headers=bearer(user)), 401)
    assert client.get("/metrics", headers=OPERATOR).status_code == 200
    assert make_app(metrics_access="public").test_client().get("/metrics").status_code == 200
    with pytest.raises(ValueError, match="LBS_METRICS_ACCESS"):
        Settings(metrics_access="everyone")
