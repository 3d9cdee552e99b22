"""Deal test data over HTTP: operator-made merchants with API keys, users, deal payloads."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from tests.conftest import OPERATOR

HELSINKI = (60.17, 24.94)
_names = itertools.count(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(instant: datetime) -> str:
    """ISO 8601 with an offset (an aware datetime as given)."""
    assert instant.tzinfo is not None
    return instant.isoformat()


def make_merchant(
    client: FlaskClient,
    lat: float = HELSINKI[0],
    lon: float = HELSINKI[1],
    name: str | None = None,
    category: str = "restaurant",
) -> tuple[int, str]:
    """A merchant created by the operator plus a fresh API key for it: (merchant id, key)."""
    body = {"name": name or f"Deal shop {next(_names)}", "category": category, "lat": lat, "lon": lon}
    created = client.post("/v1/merchants", json=body, headers=OPERATOR)
    assert created.status_code == 201, created.get_data(as_text=True)
    merchant_id = int(created.get_json()["id"])
    issued = client.post(f"/v1/merchants/{merchant_id}/api-keys", headers=OPERATOR)
    assert issued.status_code == 201, issued.get_data(as_text=True)
    return merchant_id, str(issued.get_json()["api_key"])


def make_user(client: FlaskClient) -> tuple[int, str]:
    """A new anonymous user: (user id, bearer token)."""
    response = client.post("/v1/users")
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    return int(body["user_id"]), str(body["token"])


def deal_payload(now: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid deal body, live now (valid from a day ago for 30 days), all day; overrides win."""
    now = now or datetime.now(UTC)
    body: dict[str, Any] = {
        "title": "Evening ramen -40 %",
        "description": "Any bowl",
        "kind": "percent_off",
        "currency": "EUR",
        "list_price_minor": 1500,
        "deal_price_minor": 900,
        "quantity_total": 50,
        "per_user_limit": 1,
        "valid_from": iso(now - timedelta(days=1)),
        "valid_until": iso(now + timedelta(days=30)),
        "windows": [],
    }
    body.update(overrides)
    return body


def create_deal(client: FlaskClient, key: str, **overrides: Any) -> dict[str, Any]:
    """POST a deal_payload(**overrides) with the merchant's key; asserts 201 and returns the deal."""
    response = client.post("/v1/merchant/deals", json=deal_payload(**overrides), headers=bearer(key))
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def transition(client: FlaskClient, key: str, deal_id: int, action: str) -> dict[str, Any]:
    """publish / pause / resume / end; asserts 200 and returns the deal."""
    response = client.post(f"/v1/merchant/deals/{deal_id}/{action}", headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def claim(client: FlaskClient, user_token: str, deal_id: int, idempotency_key: str) -> dict[str, Any]:
    """Claim a deal as a user; asserts 201 and returns the voucher."""
    response = client.post(
        f"/v1/deals/{deal_id}/claim",
        headers={**bearer(user_token), "Idempotency-Key": idempotency_key},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())
