"""Stripe's webhook, delivered by the test: events built and signed here, the intent's real
state set at localstripe first. Effects happen exactly once however events are duplicated,
replayed or reordered; a bad signature is a 400 that changes nothing."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, select, text, update

from lbs.models import Order
from lbs.payments.books import check_books
from lbs.payments.provider import CardDeclined, PaymentProvider
from lbs.services.vouchers import release_unit
from tests.deals_factory import bearer, make_user
from tests.payments_support import signed_event
from tests.prepaid_factory import WEBHOOK_SECRET, deliver, intent_event, order, prepaid_deal
from tests.problems import assert_problem

HOOK = "/v1/payments/stripe/webhook"


@dataclass(frozen=True)
class Pending:
    """A user's pending order of a prepaid deal, its intent not yet paid."""

    deal_id: int
    order_id: int
    intent_id: str
    token: str


def _pending(client: FlaskClient, **deal: Any) -> Pending:
    _, _, made = prepaid_deal(client, **deal)
    _, token = make_user(client)
    placed = order(client, token, made["id"])
    return Pending(made["id"], placed["id"], placed["payment"]["intent_id"], token)


def _provider(app: OpenAPI) -> PaymentProvider:
    provider = app.extensions["lbs"].payments
    assert provider is not None
    return provider


def _engine(app: OpenAPI) -> Engine:
    return app.extensions["lbs"].engine  # type: ignore[no-any-return]


def _state(app: OpenAPI, order_id: int) -> tuple[str, int, list[tuple[str, str, int]], int]:
    """From the database: the order's status, its vouchers, its refunds (reason, status,
    amount), and how many provider events were recorded."""
    with _engine(app).connect() as c:
        status = c.execute(text("SELECT status FROM orders WHERE id = :o"), {"o": order_id}).scalar_one()
        vouchers = c.execute(text("SELECT count(*) FROM vouchers WHERE order_id = :o"), {"o": order_id})
        refunds = c.execute(
            text("SELECT reason, status, amount_minor FROM refunds WHERE order_id = :o ORDER BY id"),
            {"o": order_id},
        )
        events = c.execute(text("SELECT count(*) FROM provider_events")).scalar_one()
        return status, vouchers.scalar_one(), [tuple(r) for r in refunds.all()], events


def _stock_left(client: FlaskClient, deal_id: int) -> int:
    return int(client.get(f"/v1/deals/{deal_id}").get_json()["stock_left"])


def test_succeeded_issues_one_voucher_and_a_duplicate_does_nothing(
    pay_app: OpenAPI, pay_client: FlaskClient
) -> None:
    p = _pending(pay_client, quantity_total=3)
    assert _provider(pay_app).pay_with_test_card(p.intent_id, "visa").status == "succeeded"
    event = intent_event("payment_intent.succeeded", p.intent_id)

    first = deliver(pay_client, event)
    second = deliver(pay_client, event)  # Stripe delivers at least once

    assert (first.status_code, first.get_json()) == (200, {"received": True, "duplicate": False})
    assert (second.status_code, second.get_json()) == (200, {"received": True, "duplicate": True})
    assert _state(pay_app, p.order_id) == ("paid", 1, [], 1)
    assert _stock_left(pay_client, p.deal_id) == 2
    mine = pay_client.get("/v1/me/vouchers", headers=bearer(p.token)).get_json()["items"]
    assert [v["order_id"] for v in mine] == [p.order_id]


def test_the_same_body_and_signature_replayed_later_change_nothing(
    pay_app: OpenAPI, pay_client: FlaskClient
) -> None:
    p = _pending(pay_client)
    _provider(pay_app).pay_with_test_card(p.intent_id, "visa")
    body, headers = signed_event(intent_event("payment_intent.succeeded", p.intent_id), WEBHOOK_SECRET)
    assert pay_client.post(HOOK, data=body, headers=headers).get_json()["duplicate"] is False
    voucher_id = pay_client.get(f"/v1/me/orders/{p.order_id}", headers=bearer(p.token)).get_json()[
        "voucher_id"
    ]
    refunded = pay_client.post(f"/v1/me/vouchers/{voucher_id}/refund", headers=bearer(p.token))
    assert refunded.status_code == 200, refunded.get_json()

    replayed = pay_client.post(HOOK, data=body, headers=headers)  # captured and sent again

    assert (replayed.status_code, replayed.get_json()["duplicate"]) == (200, True)
    assert _state(pay_app, p.order_id) == ("paid", 1, [("user", "succeeded", 900)], 1)
    voucher = pay_client.get(f"/v1/me/vouchers/{voucher_id}", headers=bearer(p.token)).get_json()
    assert voucher["status"] == "refunded"
    # Even as a new event the payment is not applied again: the order has moved on.
    again = deliver(pay_client, intent_event("payment_intent.succeeded", p.intent_id))
    assert again.get_json()["duplicate"] is False
    assert _state(pay_app, p.order_id) == ("paid", 1, [("user", "succeeded", 900)], 2)


def test_payment_failed_after_succeeded_keeps_the_voucher(pay_app: OpenAPI, pay_client: FlaskClient) -> None:
    p = _pending(pay_client, quantity_total=2)
    provider = _provider(pay_app)
    with pytest.raises(CardDeclined):
        provider.pay_with_test_card(p.intent_id, "declined")  # a first attempt fails...
    provider.pay_with_test_card(p.intent_id, "visa")  # ...the second is paid
    failed = intent_event("payment_intent.payment_failed", p.intent_id)

    assert deliver(pay_client, intent_event("payment_intent.succeeded", p.intent_id)).status_code == 200
    late = deliver(pay_client, failed)  # the first attempt's event, arriving last

    assert (late.status_code, late.get_json()["duplicate"]) == (200, False)
    assert _state(pay_app, p.order_id) == ("paid", 1, [], 2)
    assert provider.get_intent(p.intent_id).status == "succeeded"
    assert _stock_left(pay_client, p.deal_id) == 1


def test_payment_failed_first_releases_the_hold(pay_app: OpenAPI, pay_client: FlaskClient) -> None:
    p = _pending(pay_client, quantity_total=1)
    with pytest.raises(CardDeclined):
        _provider(pay_app).pay_with_test_card(p.intent_id, "declined")

    failed = deliver(pay_client, intent_event("payment_intent.payment_failed", p.intent_id))

    assert failed.status_code == 200
    assert _state(pay_app, p.order_id) == ("failed", 0, [], 1)
    assert _provider(pay_app).get_intent(p.intent_id).status == "canceled"  # cannot be paid later
    assert _stock_left(pay_client, p.deal_id) == 1


def test_succeeded_for_an_unpaid_intent_is_checked_with_the_provider(
    pay_app: OpenAPI, pay_client: FlaskClient
) -> None:
    p = _pending(pay_client)

    claimed = deliver(pay_client, intent_event("payment_intent.succeeded", p.intent_id, status="succeeded"))

    assert claimed.status_code == 200
    assert _state(pay_app, p.order_id) == ("pending", 0, [], 1)  # the event says so; Stripe does not


def _released_meanwhile(app: OpenAPI, order_id: int) -> None:
    """The order's hold run out and released while its payment went through at the provider:
    the state the late-payment path is for (a confirmation the cancel could not stop)."""
    ran_out = datetime.now(UTC) - timedelta(seconds=1)
    with app.extensions["lbs"].sessions() as session, session.begin():
        order = session.execute(select(Order).where(Order.id == order_id)).scalar_one()
        session.execute(
            update(Order).where(Order.id == order_id).values(status="expired", hold_expires_at=ran_out)
        )
        release_unit(session, order.deal_id, order.user_id)


def test_a_late_payment_gets_a_voucher_while_stock_lasts(pay_app: OpenAPI, pay_client: FlaskClient) -> None:
    p = _pending(pay_client, quantity_total=2)
    _released_meanwhile(pay_app, p.order_id)
    assert _stock_left(pay_client, p.deal_id) == 2
    _provider(pay_app).pay_with_test_card(p.intent_id, "visa")

    late = deliver(pay_client, intent_event("payment_intent.succeeded", p.intent_id))

    assert late.status_code == 200
    assert _state(pay_app, p.order_id) == ("paid", 1, [], 1)
    assert _stock_left(pay_client, p.deal_id) == 1


def test_a_late_payment_is_settled_at_what_it_paid(pay_app: OpenAPI, pay_client: FlaskClient) -> None:
    _, key, deal = prepaid_deal(pay_client, quantity_total=2)
    _, token = make_user(pay_client)
    placed = order(pay_client, token, deal["id"])
    _released_meanwhile(pay_app, placed["id"])
    # No claims left, so the merchant may reprice the deal meanwhile.
    repriced = pay_client.patch(
        f"/v1/merchant/deals/{deal['id']}", json={"deal_price_minor": 700}, headers=bearer(key)
    )
    assert repriced.status_code == 200, repriced.get_json()
    _provider(pay_app).pay_with_test_card(placed["payment"]["intent_id"], "visa")  # 900 taken

    assert (
        deliver(
            pay_client, intent_event("payment_intent.succeeded", placed["payment"]["intent_id"])
        ).status_code
        == 200
    )

    voucher_id = pay_client.get(f"/v1/me/orders/{placed['id']}", headers=bearer(token)).get_json()[
        "voucher_id"
    ]
    with _engine(pay_app).connect() as c:
        price = c.execute(
            text("SELECT price_minor FROM vouchers WHERE id = :v"), {"v": voucher_id}
        ).scalar_one()
    assert price == 900
    with pay_app.extensions["lbs"].sessions() as session:
        books = check_books(session)
    assert books.ok, (books.problems, books.books)


def test_a_late_payment_without_stock_is_refunded(pay_app: OpenAPI, pay_client: FlaskClient) -> None:
    p = _pending(pay_client, quantity_total=1)
    _released_meanwhile(pay_app, p.order_id)
    _, someone = make_user(pay_client)
    order(pay_client, someone, p.deal_id)  # takes the unit the hold gave back
    provider = _provider(pay_app)
    provider.pay_with_test_card(p.intent_id, "visa")

    late = deliver(pay_client, intent_event("payment_intent.succeeded", p.intent_id))
    twice = deliver(pay_client, intent_event("payment_intent.succeeded", p.intent_id))

    assert (late.status_code, twice.status_code) == (200, 200)
    assert _state(pay_app, p.order_id) == ("refunded", 0, [("late_payment", "succeeded", 900)], 2)
    assert provider.get_intent(p.intent_id).amount_refunded_minor == 900
    assert len(provider.list_refunds(p.intent_id)) == 1
    shown = pay_client.get(f"/v1/me/orders/{p.order_id}", headers=bearer(p.token)).get_json()
    assert (shown["status"], shown["voucher_id"]) == ("refunded", None)


def _tampered(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    event = json.loads(body)
    event["data"]["object"]["amount"] = 1
    return json.dumps(event).encode(), headers


BAD_DELIVERIES = {
    "another-secret": lambda event: signed_event(event, "whsec_someone_else"),
    "tampered-body": lambda event: _tampered(*signed_event(event, WEBHOOK_SECRET)),
    "stale": lambda event: signed_event(event, WEBHOOK_SECRET, timestamp=int(time.time()) - 301),
    "no-header": lambda event: (signed_event(event, WEBHOOK_SECRET)[0], {"Content-Type": "application/json"}),
    "not-a-signature": lambda event: (
        signed_event(event, WEBHOOK_SECRET)[0],
        {"Stripe-Signature": "t=1,v1=00"},
    ),
}


@pytest.mark.parametrize("bad", BAD_DELIVERIES)
def test_a_bad_signature_is_a_400_and_changes_nothing(
    bad: str, pay_app: OpenAPI, pay_client: FlaskClient
) -> None:
    p = _pending(pay_client)
    _provider(pay_app).pay_with_test_card(p.intent_id, "visa")
    event = intent_event("payment_intent.succeeded", p.intent_id, amount=900)
    body, headers = BAD_DELIVERIES[bad](event)

    refused = pay_client.post(HOOK, data=body, headers=headers)

    problem = assert_problem(refused, 400, field="Stripe-Signature")
    assert WEBHOOK_SECRET not in json.dumps(problem)
    assert _state(pay_app, p.order_id) == ("pending", 0, [], 0)
    assert _stock_left(pay_client, p.deal_id) == 49
    # The genuine delivery of the same event still applies it.
    assert deliver(pay_client, event).get_json() == {"received": True, "duplicate": False}
    assert _state(pay_app, p.order_id) == ("paid", 1, [], 1)


def test_an_event_for_an_unknown_intent_is_taken_and_does_nothing(
    pay_app: OpenAPI, pay_client: FlaskClient
) -> None:
    p = _pending(pay_client)
    other = _provider(pay_app).create_intent(
        amount_minor=900, currency="EUR", order_ref="not-ours", key=f"lbs:test:{uuid.uuid4()}"
    )
    _provider(pay_app).pay_with_test_card(other.id, "visa")

    taken = deliver(pay_client, intent_event("payment_intent.succeeded", other.id))

    assert (taken.status_code, taken.get_json()) == (200, {"received": True, "duplicate": False})
    assert _state(pay_app, p.order_id) == ("pending", 0, [], 1)
    with _engine(pay_app).connect() as c:
        assert c.execute(text("SELECT count(*) FROM vouchers")).scalar_one() == 0
        assert c.execute(text("SELECT count(*) FROM refunds")).scalar_one() == 0


def test_the_same_event_delivered_twice_at_once_is_applied_once(
    pay_app: OpenAPI, pay_client: FlaskClient
) -> None:
    p = _pending(pay_client, quantity_total=3)
    _provider(pay_app).pay_with_test_card(p.intent_id, "visa")
    body, headers = signed_event(intent_event("payment_intent.succeeded", p.intent_id), WEBHOOK_SECRET)
    start = threading.Barrier(4)

    def delivery() -> dict[str, Any]:
        client = pay_app.test_client()
        start.wait()
        response = client.post(HOOK, data=body, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return dict(response.get_json())

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: delivery(), range(4)))

    assert sorted(a["duplicate"] for a in answers) == [False, True, True, True]
    assert _state(pay_app, p.order_id) == ("paid", 1, [], 1)
    assert _stock_left(pay_client, p.deal_id) == 2
