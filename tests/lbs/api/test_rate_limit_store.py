"""The rate-limit store unreachable (issue 16, defect 4): never a 500. Claims go on uncounted;
new users and redemptions answer 503 with Retry-After; /readyz says so.

The store is a Redis URL on a port nobody listens on, the way a stopped Redis looks."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from tests.deals_factory import bearer, create_deal, make_merchant, make_user
from tests.problems import assert_problem


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def store_down(make_app: Callable[..., OpenAPI]) -> FlaskClient:
    return make_app(rate_limit_storage=f"redis://127.0.0.1:{closed_port()}/0").test_client()


def test_with_the_store_down_new_users_and_redemptions_are_503_and_claims_go_on(
    client: FlaskClient, store_down: FlaskClient
) -> None:
    _, key = make_merchant(client)  # operators' and merchants' own calls take no rate limit
    deal = create_deal(client, key, publish=True)
    _, user = make_user(client)

    refused = store_down.post("/v1/users")
    problem = assert_problem(refused, 503)
    assert problem["type"].endswith("/rate-limit-store-unavailable") and "new user" in problem["detail"]
    assert refused.headers["Retry-After"] == "5"

    claimed = store_down.post(
        f"/v1/deals/{deal['id']}/claim", headers={**bearer(user), "Idempotency-Key": "store-down-1"}
    )
    assert claimed.status_code == 201, claimed.get_data(as_text=True)

    redeemed = store_down.post(
        "/v1/merchant/vouchers/redeem", json={"code": claimed.get_json()["code"]}, headers=bearer(key)
    )
    assert_problem(redeemed, 503)
    held = client.get(f"/v1/me/vouchers/{claimed.get_json()['id']}", headers=bearer(user))
    assert held.get_json()["status"] == "issued"


def test_readyz_reports_the_store(client: FlaskClient, store_down: FlaskClient) -> None:
    assert client.get("/readyz").get_json()["rate_limit_store"] == "ok"  # the database

    began = time.monotonic()
    response = store_down.get("/readyz")
    assert time.monotonic() - began < 1.5
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["rate_limit_store"] == "unreachable"
