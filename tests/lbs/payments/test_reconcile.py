"""`lbs payments reconcile` and `lbs payments books` against localstripe: what the provider did
that lbs was not told of (a lost webhook, a cancel or a refund on its dashboard) repaired or
reported, pending refunds sent once, and the books' exit codes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from lbs.cli import main
from lbs.models import Refund, Voucher
from lbs.payments.reconcile import reconcile
from tests.conftest import TEST_SECRET_KEY
from tests.deals_factory import bearer
from tests.payments_support import free_port
from tests.prepaid_factory import new_order, new_voucher, prepaid_deal, provider_of, stock_left


def lbs_payments(database_url: str, pay_config: dict[str, Any], *args: str) -> Result:
    env = {"LBS_DATABASE_URL": database_url, "LBS_SECRET_KEY": TEST_SECRET_KEY}
    env |= {f"LBS_{name.upper()}": str(value) for name, value in pay_config.items()}
    return CliRunner().invoke(main, ["payments", *args], env=env)


def order_status(client: FlaskClient, token: str, order_id: int) -> dict[str, Any]:
    return dict(client.get(f"/v1/me/orders/{order_id}", headers=bearer(token)).get_json())


def refunds_of(engine: Engine, order_id: int) -> list[Refund]:
    with Session(engine) as session:
        return list(session.scalars(select(Refund).where(Refund.order_id == order_id)))


def test_reconcile_repairs_a_lost_webhook_and_a_cancel_at_the_provider(
    pay_app: OpenAPI, pay_client: FlaskClient, database_url: str, pay_config: dict[str, Any]
) -> None:
    _, _, deal = prepaid_deal(pay_client, quantity_total=2)
    provider = provider_of(pay_app)
    payer, lost = new_order(pay_client, deal["id"])
    provider.pay_with_test_card(lost["payment"]["intent_id"], "visa")  # its webhook never came
    canceller, cancelled = new_order(pay_client, deal["id"])
    provider.cancel_intent(cancelled["payment"]["intent_id"], key=f"dashboard-{uuid.uuid4().hex}")
    assert stock_left(pay_client, deal["id"]) == 0

    first = lbs_payments(database_url, pay_config, "reconcile")

    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        f"repaired: order {lost['id']}: succeeded at the provider, pending here: now paid",
        f"repaired: order {cancelled['id']}: canceled at the provider, pending here: now canceled",
        "2 difference(s), 2 repaired, 0 to settle by hand",
    ]
    now_paid = order_status(pay_client, payer, lost["id"])
    assert now_paid["status"] == "paid" and now_paid["voucher_id"] is not None
    assert order_status(pay_client, canceller, cancelled["id"])["status"] == "canceled"
    assert stock_left(pay_client, deal["id"]) == 1  # the paid order's voucher holds the other

    again = lbs_payments(database_url, pay_config, "reconcile")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines() == ["0 difference(s), 0 repaired, 0 to settle by hand"]
    books = lbs_payments(database_url, pay_config, "books")
    assert books.exit_code == 0, books.output


def test_a_refund_at_the_provider_of_an_unused_voucher_is_recorded(
    pay_app: OpenAPI, pay_client: FlaskClient, engine: Engine
) -> None:
    _, _, deal = prepaid_deal(pay_client, quantity_total=1)
    token, order, voucher = new_voucher(pay_client, deal["id"])
    assert stock_left(pay_client, deal["id"]) == 0
    provider, rt = provider_of(pay_app), pay_app.extensions["lbs"]
    made = provider.refund(
        order["payment"]["intent_id"], 900, refund_ref="dashboard", key=f"dashboard-{uuid.uuid4().hex}"
    )
    now = datetime.now(UTC)

    with rt.sessions() as session:
        found = reconcile(session, provider, rt.secret_key, now, now - timedelta(days=1))

    assert [(d.order_id, d.repaired) for d in found] == [(order["id"], True)]
    assert f"voucher {voucher['id']} marked refunded" in found[0].what and made.id in found[0].what
    [refund] = refunds_of(engine, order["id"])
    assert (refund.reason, refund.status, refund.provider_refund_id) == ("provider", "succeeded", made.id)
    assert (refund.voucher_id, refund.amount_minor, refund.currency) == (voucher["id"], 900, "EUR")
    mine = pay_client.get(f"/v1/me/vouchers/{voucher['id']}", headers=bearer(token)).get_json()
    assert mine["status"] == "refunded"
    assert stock_left(pay_client, deal["id"]) == 1
    with rt.sessions() as session:
        assert reconcile(session, provider, rt.secret_key, now, now - timedelta(days=1)) == []
    assert len(provider.list_refunds(order["payment"]["intent_id"])) == 1


def test_a_refund_at_the_provider_of_a_redeemed_voucher_is_reported(
    pay_app: OpenAPI, pay_client: FlaskClient, database_url: str, pay_config: dict[str, Any], engine: Engine
) -> None:
    _, merchant_key, deal = prepaid_deal(pay_client, quantity_total=3)
    _, order, voucher = new_voucher(pay_client, deal["id"])
    redeemed = pay_client.post(
        "/v1/merchant/vouchers/redeem", json={"code": voucher["code"]}, headers=bearer(merchant_key)
    )
    assert redeemed.status_code == 200, redeemed.get_json()
    made = provider_of(pay_app).refund(
        order["payment"]["intent_id"], 900, refund_ref="dashboard", key=f"dashboard-{uuid.uuid4().hex}"
    )

    result = lbs_payments(database_url, pay_config, "reconcile")

    assert result.exit_code == 1, result.output
    line = (
        f"REPORTED: order {order['id']}: refunded 900 EUR at the provider ({made.id}), not through lbs, but "
    )
    assert line in result.output and "settle by hand" in result.output
    assert "1 difference(s), 0 repaired, 1 to settle by hand" in result.output
    assert refunds_of(engine, order["id"]) == []
    with Session(engine) as session:
        row = session.get(Voucher, voucher["id"])
        assert row is not None and row.redeemed_at is not None and row.refunded_at is None
    assert stock_left(pay_client, deal["id"]) == 2
    assert lbs_payments(database_url, pay_config, "books").exit_code == 0  # lbs's own books still balance


def refunded_unreachably(
    make_app: Callable[..., OpenAPI], client: FlaskClient, pay_config: dict[str, Any], deal_id: int
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A paid voucher refunded through an app whose provider does not answer: its refund pending."""
    token, order, voucher = new_voucher(client, deal_id)
    unreachable = make_app(**{**pay_config, "stripe_api_base": f"http://127.0.0.1:{free_port()}"})
    refunded = unreachable.test_client().post(
        f"/v1/me/vouchers/{voucher['id']}/refund", headers=bearer(token)
    )
    assert refunded.status_code == 200, refunded.get_json()
    assert refunded.get_json()["status"] == "pending"
    return token, order, voucher


def test_a_refund_made_while_the_provider_was_unreachable_is_sent_once(
    make_app: Callable[..., OpenAPI],
    pay_app: OpenAPI,
    pay_client: FlaskClient,
    database_url: str,
    pay_config: dict[str, Any],
    engine: Engine,
) -> None:
    _, _, deal = prepaid_deal(pay_client, quantity_total=1)
    token, order, voucher = refunded_unreachably(make_app, pay_client, pay_config, deal["id"])
    assert stock_left(pay_client, deal["id"]) == 1  # decided in lbs: the voucher is refunded already
    intent_id = order["payment"]["intent_id"]
    assert provider_of(pay_app).list_refunds(intent_id) == []

    sent = lbs_payments(database_url, pay_config, "reconcile")
    again = lbs_payments(database_url, pay_config, "reconcile")

    [refund] = refunds_of(engine, order["id"])
    assert sent.exit_code == 0, sent.output
    assert sent.output.splitlines() == [
        f"repaired: order {order['id']}: refund {refund.id} was pending: made now",
        "1 difference(s), 1 repaired, 0 to settle by hand",
    ]
    assert again.exit_code == 0 and "0 difference(s)" in again.output, again.output
    [theirs] = provider_of(pay_app).list_refunds(intent_id)
    assert (theirs.amount_minor, theirs.refund_ref, theirs.id) == (900, refund.ref, refund.provider_refund_id)
    assert refund.status == "succeeded"
    status = pay_client.get(f"/v1/me/vouchers/{voucher['id']}/refund", headers=bearer(token)).get_json()
    assert status["status"] == "succeeded"


def test_a_pending_refund_the_provider_will_not_make_is_reported(
    make_app: Callable[..., OpenAPI],
    pay_app: OpenAPI,
    pay_client: FlaskClient,
    database_url: str,
    pay_config: dict[str, Any],
    engine: Engine,
) -> None:
    _, _, deal = prepaid_deal(pay_client, quantity_total=1)
    _, order, _ = refunded_unreachably(make_app, pay_client, pay_config, deal["id"])
    intent_id = order["payment"]["intent_id"]
    # Meanwhile the charge is refunded on the provider's dashboard: lbs's refund can no longer be made.
    made = provider_of(pay_app).refund(intent_id, 900, refund_ref="dashboard", key=uuid.uuid4().hex)

    result = lbs_payments(database_url, pay_config, "reconcile")

    [refund] = refunds_of(engine, order["id"])
    assert result.exit_code == 1, result.output
    assert (
        f"REPORTED: order {order['id']}: refund {refund.id} is pending: the provider did not make it"
        in result.output
    )
    assert "2 difference(s), 0 repaired, 2 to settle by hand" in result.output  # and the dashboard's
    assert refund.status == "pending" and provider_of(pay_app).list_refunds(intent_id) == [made]


def test_books_command_prints_the_books_and_fails_when_they_do_not_balance(
    pay_client: FlaskClient, database_url: str, pay_config: dict[str, Any], engine: Engine
) -> None:
    _, merchant_key, deal = prepaid_deal(pay_client, quantity_total=5)
    _, _, redeemed = new_voucher(pay_client, deal["id"])
    assert pay_client.post(
        "/v1/merchant/vouchers/redeem", json={"code": redeemed["code"]}, headers=bearer(merchant_key)
    ).status_code == 200  # fmt: skip
    token, order, refunded = new_voucher(pay_client, deal["id"])
    assert (
        pay_client.post(f"/v1/me/vouchers/{refunded['id']}/refund", headers=bearer(token)).status_code == 200
    )
    new_voucher(pay_client, deal["id"])  # held

    balanced = lbs_payments(database_url, pay_config, "books")

    assert balanced.exit_code == 0, balanced.output
    assert balanced.output.splitlines() == [
        "EUR: paid in 2700 = refunded 900 (pending 0) + owed to merchants 810 (paid out 0)"
        " + commission 90 + held for unused vouchers 900",
        "books balance",
    ]
    with engine.begin() as connection:  # the refund recorded for less than was paid back
        connection.execute(
            text("UPDATE refunds SET amount_minor = 800 WHERE order_id = :o"), {"o": order["id"]}
        )
    unbalanced = lbs_payments(database_url, pay_config, "books")
    assert unbalanced.exit_code == 1, unbalanced.output
    assert "refunded 800" in unbalanced.output and "UNBALANCED by 100" in unbalanced.output
    assert "the books do not balance" in unbalanced.output
