"""Prepaid claims over HTTP for the tests: a prepaid deal, an order, its test payment, and a
webhook delivery of a Stripe event signed as the payment apps' secret signs it."""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.deals_factory import bearer, create_deal, make_merchant
from tests.payments_support import signed_event, stripe_event

# tests/lbs/payments/conftest.py's pay_config signs with this.
WEBHOOK_SECRET = "whsec_lbs_test"


def prepaid_deal(client: FlaskClient, **overrides: Any) -> tuple[int, str, dict[str, Any]]:
    """A new merchant and its published prepaid deal (900 EUR cents): (merchant id, key, deal)."""
    merchant_id, key = make_merchant(client)
    return merchant_id, key, create_deal(client, key, publish=True, payment="prepaid", **overrides)


def place_order(client: FlaskClient, token: str, deal_id: int, key: str | None = None) -> TestResponse:
    headers = {**bearer(token), "Idempotency-Key": key or uuid.uuid4().hex}
    return client.post(f"/v1/deals/{deal_id}/orders", headers=headers)


def order(client: FlaskClient, token: str, deal_id: int) -> dict[str, Any]:
    """A new pending order; asserts 201."""
    response = place_order(client, token, deal_id)
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def pay(client: FlaskClient, token: str, order_id: int) -> dict[str, Any]:
    """Pay the order with the test visa; asserts it is paid and returns it (voucher_id set)."""
    response = client.post(
        f"/v1/me/orders/{order_id}/test-payment", json={"card": "visa"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "paid", response.get_json()
    return dict(response.get_json())


def paid_order(client: FlaskClient, token: str, deal_id: int) -> dict[str, Any]:
    return pay(client, token, order(client, token, deal_id)["id"])


def intent_event(event_type: str, intent_id: str, **fields: Any) -> dict[str, Any]:
    """A payment_intent.* event about the intent (only its id is read: lbs asks the provider
    for the intent's state)."""
    return stripe_event(event_type, {"id": intent_id, "object": "payment_intent", **fields})


def deliver(
    client: FlaskClient, payload: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> TestResponse:
    body, headers = signed_event(payload, secret, timestamp=timestamp)
    return client.post("/v1/payments/stripe/webhook", data=body, headers=headers)
