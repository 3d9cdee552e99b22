"""Prepaid claims through the API against localstripe: order, pay, voucher, refund, expiry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from lbs.payments.expiry import expire
from tests.deals_factory import bearer, create_deal, make_merchant, make_user


def _order(client: FlaskClient, token: str, deal_id: int, key: str | None = None) -> Any:
    headers = {**bearer(token), "Idempotency-Key": key or uuid.uuid4().hex}
    return client.post(f"/v1/deals/{deal_id}/orders", headers=headers)


def _prepaid(client: FlaskClient, **overrides: Any) -> tuple[int, str, dict[str, Any]]:
    merchant_id, key = make_merchant(client)
    deal = create_deal(client, key, publish=True, payment="prepaid", **overrides)
    return merchant_id, key, deal


def test_order_pay_voucher_redeem(pay_client: FlaskClient) -> None:
    _, merchant_key, deal = _prepaid(pay_client, quantity_total=3)
    assert deal["payment"] == "prepaid" and deal["refund_policy"] == "anytime"
    _, token = make_user(pay_client)
    placed = _order(pay_client, token, deal["id"], key="k1")
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    assert order["status"] == "pending" and order["amount_minor"] == 900 and order["currency"] == "EUR"
    assert order["payment"]["client_secret"].startswith(order["payment"]["intent_id"])
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 2  # held

    again = _order(pay_client, token, deal["id"], key="k1")
    assert again.status_code == 200 and again.get_json()["id"] == order["id"]

    paid = pay_client.post(
        f"/v1/me/orders/{order['id']}/test-payment", json={"card": "visa"}, headers=bearer(token)
    )
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["status"] == "paid" and paid.get_json()["voucher_id"] is not None
    voucher = pay_client.get(
        f"/v1/me/vouchers/{paid.get_json()['voucher_id']}", headers=bearer(token)
    ).get_json()
    assert voucher["order_id"] == order["id"] and voucher["status"] == "issued"
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 2  # the hold became it

    redeemed = pay_client.post(
        "/v1/merchant/vouchers/redeem", json={"code": voucher["code"]}, headers=bearer(merchant_key)
    )
    assert redeemed.status_code == 200, redeemed.get_json()
    refused = pay_client.post(f"/v1/me/vouchers/{voucher['id']}/refund", headers=bearer(token))
    assert refused.status_code == 409 and refused.get_json()["type"].endswith("voucher-already-redeemed")

    statements = pay_client.get("/v1/merchant/settlements", headers=bearer(merchant_key)).get_json()["items"]
    assert [(s["gross_minor"], s["commission_minor"], s["net_minor"], s["status"]) for s in statements] == [
        (900, 90, 810, "open")
    ]


def test_free_claim_of_prepaid_deal_is_refused(pay_client: FlaskClient) -> None:
    _, _, deal = _prepaid(pay_client)
    _, token = make_user(pay_client)
    claimed = pay_client.post(
        f"/v1/deals/{deal['id']}/claim", headers={**bearer(token), "Idempotency-Key": "x"}
    )
    assert claimed.status_code == 409 and claimed.get_json()["orders_url"] == f"/v1/deals/{deal['id']}/orders"


def test_decline_releases_the_hold(pay_client: FlaskClient) -> None:
    _, _, deal = _prepaid(pay_client, quantity_total=1)
    _, token = make_user(pay_client)
    order = _order(pay_client, token, deal["id"]).get_json()
    assert _order(pay_client, make_user(pay_client)[1], deal["id"]).status_code == 409  # sold out while held
    declined = pay_client.post(
        f"/v1/me/orders/{order['id']}/test-payment", json={"card": "declined"}, headers=bearer(token)
    )
    assert declined.status_code == 402, declined.get_json()
    assert (
        pay_client.get(f"/v1/me/orders/{order['id']}", headers=bearer(token)).get_json()["status"] == "failed"
    )
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 1


def test_refund_returns_stock_and_money(pay_app: OpenAPI, pay_client: FlaskClient) -> None:
    _, merchant_key, deal = _prepaid(pay_client, quantity_total=1)
    _, token = make_user(pay_client)
    order = _order(pay_client, token, deal["id"]).get_json()
    paid = pay_client.post(
        f"/v1/me/orders/{order['id']}/test-payment", json={}, headers=bearer(token)
    ).get_json()
    refund = pay_client.post(f"/v1/me/vouchers/{paid['voucher_id']}/refund", headers=bearer(token))
    assert refund.status_code == 200, refund.get_json()
    assert refund.get_json()["status"] == "succeeded" and refund.get_json()["amount_minor"] == 900
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 1
    voucher = pay_client.get(f"/v1/me/vouchers/{paid['voucher_id']}", headers=bearer(token)).get_json()
    assert voucher["status"] == "refunded"
    counter = pay_client.post(
        "/v1/merchant/vouchers/redeem", json={"code": voucher["code"]}, headers=bearer(merchant_key)
    )
    assert counter.status_code == 409 and counter.get_json()["type"].endswith("voucher-refunded")
    provider = pay_app.extensions["lbs"].payments
    assert provider.get_intent(order["payment"]["intent_id"]).amount_refunded_minor == 900


def test_expire_releases_holds_and_refunds_expired_vouchers(
    pay_app: OpenAPI, pay_client: FlaskClient
) -> None:
    _, _, deal = _prepaid(pay_client, quantity_total=5, redeem_within_minutes=30)
    _, token = make_user(pay_client)
    held = _order(pay_client, token, deal["id"]).get_json()
    _, token2 = make_user(pay_client)
    order = _order(pay_client, token2, deal["id"]).get_json()
    paid = pay_client.post(
        f"/v1/me/orders/{order['id']}/test-payment", json={}, headers=bearer(token2)
    ).get_json()
    rt = pay_app.extensions["lbs"]
    later = datetime.now(UTC) + timedelta(hours=1)
    with rt.sessions() as session:
        done = expire(session, rt.payments, rt.secret_key, later, 1000)
    assert (done.holds_released, done.vouchers_refunded) == (1, 1)
    assert (
        pay_client.get(f"/v1/me/orders/{held['id']}", headers=bearer(token)).get_json()["status"] == "expired"
    )
    voucher = pay_client.get(f"/v1/me/vouchers/{paid['voucher_id']}", headers=bearer(token2)).get_json()
    assert voucher["status"] == "refunded"
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 5
    with rt.sessions() as session:
        again = expire(session, rt.payments, rt.secret_key, later, 1000)
    assert (again.holds_released, again.vouchers_refunded) == (0, 0)


def _paid_orders_counted() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("lbs_payment_orders_total", {"status": "paid"}) or 0.0


def test_metrics_count_paid_orders(pay_client: FlaskClient) -> None:
    _, _, deal = _prepaid(pay_client)
    _, token = make_user(pay_client)
    before = _paid_orders_counted()
    order = _order(pay_client, token, deal["id"]).get_json()
    pay_client.post(f"/v1/me/orders/{order['id']}/test-payment", json={}, headers=bearer(token))
    pay_client.get(f"/v1/me/orders/{order['id']}", headers=bearer(token))  # already paid: not counted again
    assert _paid_orders_counted() == before + 1


def test_provider_down_releases_the_hold(
    make_app: Callable[..., OpenAPI], pay_config: dict[str, Any], pay_client: FlaskClient
) -> None:
    _, _, deal = _prepaid(pay_client, quantity_total=1)
    down = make_app(**{**pay_config, "stripe_api_base": "http://127.0.0.1:9"}).test_client()
    _, token = make_user(down)
    refused = _order(down, token, deal["id"])
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert refused.get_json()["type"].endswith("payment-provider-unavailable")
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 1
    assert down.get("/v1/me/orders", headers=bearer(token)).get_json()["items"][0]["status"] == "failed"
