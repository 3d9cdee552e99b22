"""Prepaid orders over HTTP against localstripe: a deal, a pending order, a paid voucher."""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from lbs.payments.provider import PaymentProvider
from tests.deals_factory import bearer, create_deal, make_merchant, make_user


def provider_of(app: OpenAPI) -> PaymentProvider:
    provider = app.extensions["lbs"].payments
    assert provider is not None
    return provider


def prepaid_deal(client: FlaskClient, **overrides: Any) -> tuple[str, dict[str, Any]]:
    _, merchant_key = make_merchant(client)
    return merchant_key, create_deal(client, merchant_key, publish=True, payment="prepaid", **overrides)


def ordered(client: FlaskClient, deal_id: int) -> tuple[str, dict[str, Any]]:
    """A new user's pending order of the deal: (its token, the order)."""
    _, token = make_user(client)
    placed = client.post(
        f"/v1/deals/{deal_id}/orders", headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex}
    )
    assert placed.status_code == 201, placed.get_json()
    return token, placed.get_json()


def paid(client: FlaskClient, deal_id: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A new user's paid order of the deal: (its token, the order, the voucher)."""
    token, order = ordered(client, deal_id)
    done = client.post(
        f"/v1/me/orders/{order['id']}/test-payment", json={"card": "visa"}, headers=bearer(token)
    )
    assert done.status_code == 200, done.get_json()
    voucher = client.get(f"/v1/me/vouchers/{done.get_json()['voucher_id']}", headers=bearer(token))
    return token, done.get_json(), voucher.get_json()


def stock_left(client: FlaskClient, deal_id: int) -> int:
    return int(client.get(f"/v1/deals/{deal_id}").get_json()["stock_left"])
