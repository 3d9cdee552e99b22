"""How a deal is paid and refunded: the rules for payment and refund_policy when a deal is
made and changed, and the refunds they allow."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.deals_factory import bearer, claim, create_deal, deal_payload, make_merchant, make_user
from tests.prepaid_factory import order, paid_order, prepaid_deal
from tests.problems import assert_problem


def _create(client: FlaskClient, **overrides: Any) -> Any:
    _, key = make_merchant(client)
    return client.post(
        "/v1/merchant/deals", json=deal_payload(publish=True, **overrides), headers=bearer(key)
    )


def test_a_free_deal_cannot_be_prepaid(pay_client: FlaskClient) -> None:
    refused = _create(pay_client, payment="prepaid", kind="fixed_price", deal_price_minor=0)

    problem = assert_problem(refused, 400, field="payment")
    assert "at_counter" in problem["detail"]


def test_a_server_without_payments_takes_no_prepaid_deal(client: FlaskClient) -> None:
    assert_problem(_create(client, payment="prepaid"), 400, field="payment")
    assert _create(client).get_json()["payment"] == "at_counter"  # the default there
    _, key = make_merchant(client)
    deal = create_deal(client, key)
    changed = client.patch(
        f"/v1/merchant/deals/{deal['id']}", json={"payment": "prepaid"}, headers=bearer(key)
    )
    assert_problem(changed, 400, field="payment")


@pytest.mark.parametrize(
    ("price", "expected"), [(900, "prepaid"), (1, "prepaid"), (0, "at_counter")]
)  # fmt: skip
def test_the_default_payment_with_a_provider(pay_client: FlaskClient, price: int, expected: str) -> None:
    made = _create(pay_client, kind="fixed_price", deal_price_minor=price)

    assert made.status_code == 201, made.get_json()
    assert (made.get_json()["payment"], made.get_json()["refund_policy"]) == (expected, "anytime")
    shown = pay_client.get(f"/v1/deals/{made.get_json()['id']}").get_json()
    assert (shown["payment"], shown["refund_policy"]) == (expected, "anytime")


def test_a_prepaid_deal_cannot_be_made_free(pay_client: FlaskClient) -> None:
    _, key, deal = prepaid_deal(pay_client)
    path = f"/v1/merchant/deals/{deal['id']}"

    assert_problem(
        pay_client.patch(path, json={"deal_price_minor": 0}, headers=bearer(key)), 400, field="payment"
    )
    both = pay_client.patch(path, json={"deal_price_minor": 0, "payment": "at_counter"}, headers=bearer(key))
    assert both.status_code == 200 and both.get_json()["payment"] == "at_counter"


@pytest.mark.parametrize(
    "change",
    [{"payment": "at_counter"}, {"refund_policy": "none"}, {"deal_price_minor": 800}],
    ids=["payment", "refund_policy", "deal_price_minor"],
)
@pytest.mark.parametrize("claimed", ["held", "paid"])
def test_terms_are_frozen_once_claimed(pay_client: FlaskClient, change: dict[str, Any], claimed: str) -> None:
    _, key, deal = prepaid_deal(pay_client)
    _, token = make_user(pay_client)
    (order if claimed == "held" else paid_order)(pay_client, token, deal["id"])
    path = f"/v1/merchant/deals/{deal['id']}"

    refused = pay_client.patch(path, json=change, headers=bearer(key))

    [field] = change
    problem = assert_problem(refused, 409, field=field)
    assert problem["type"].endswith("/field-frozen")
    shown = pay_client.get(path, headers=bearer(key)).get_json()
    assert (shown["payment"], shown["refund_policy"], shown["deal_price_minor"]) == (
        "prepaid",
        "anytime",
        900,
    )
    same = pay_client.patch(
        path, json={"payment": "prepaid", "refund_policy": "anytime"}, headers=bearer(key)
    )
    assert same.status_code == 200, same.get_json()  # restating them is no change


def test_a_no_refunds_voucher_is_not_refunded(pay_client: FlaskClient) -> None:
    _, _, deal = prepaid_deal(pay_client, refund_policy="none")
    assert (
        pay_client.get(f"/v1/deals/{deal['id']}").get_json()["refund_policy"] == "none"
    )  # shown before paying
    _, token = make_user(pay_client)
    paid = paid_order(pay_client, token, deal["id"])
    assert paid["refund_policy"] == "none"

    refused = pay_client.post(f"/v1/me/vouchers/{paid['voucher_id']}/refund", headers=bearer(token))

    assert assert_problem(refused, 409)["type"].endswith("/not-refundable")
    voucher = pay_client.get(f"/v1/me/vouchers/{paid['voucher_id']}", headers=bearer(token)).get_json()
    assert voucher["status"] == "issued"
    assert_problem(pay_client.get(f"/v1/me/vouchers/{paid['voucher_id']}/refund", headers=bearer(token)), 404)
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 49


def test_a_free_voucher_is_not_refunded(pay_client: FlaskClient) -> None:
    _, key = make_merchant(pay_client)
    deal = create_deal(pay_client, key, publish=True, payment="at_counter")
    _, token = make_user(pay_client)
    voucher = claim(pay_client, token, deal["id"], "free-1")

    refused = pay_client.post(f"/v1/me/vouchers/{voucher['id']}/refund", headers=bearer(token))

    problem = assert_problem(refused, 409)
    assert problem["type"].endswith("/not-refundable") and "free" in problem["detail"]
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 49
    ordered = pay_client.post(
        f"/v1/deals/{deal['id']}/orders", headers={**bearer(token), "Idempotency-Key": "o"}
    )
    problem = assert_problem(ordered, 409)
    assert (
        problem["type"].endswith("/not-prepaid") and problem["claim_url"] == f"/v1/deals/{deal['id']}/claim"
    )


def test_a_prepaid_deal_stays_editable_once_payments_are_off(pay_client: FlaskClient, make_app: Any) -> None:
    _, key, deal = prepaid_deal(pay_client)
    off = make_app().test_client()  # the same database, a server without a provider
    path = f"/v1/merchant/deals/{deal['id']}"

    renamed = off.patch(path, json={"title": "Lunch, pay ahead"}, headers=bearer(key))
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["payment"] == "prepaid"
    assert_problem(off.patch(path, json={"deal_price_minor": 800}, headers=bearer(key)), 400, field="payment")
