"""`lbs db check` with prepaid claims: a deal's units taken are its pending orders' holds and
its vouchers not refunded, so it balances through holds, payments, refunds and released holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from lbs.cli import main
from lbs.payments.expiry import expire
from lbs.services.reconciliation import check_books
from tests.deals_factory import bearer, claim, create_deal, make_user
from tests.prepaid_factory import new_order, new_voucher, prepaid_deal, stock_left


def db_check(database_url: str) -> Any:
    return CliRunner().invoke(main, ["db", "check"], env={"LBS_DATABASE_URL": database_url})


def test_db_check_counts_pending_orders_and_vouchers_not_refunded(
    pay_app: OpenAPI, pay_client: FlaskClient, database_url: str, engine: Engine
) -> None:
    _, merchant_key, deal = prepaid_deal(pay_client, quantity_total=6)
    free = create_deal(pay_client, merchant_key, publish=True, payment="at_counter")
    claim(pay_client, make_user(pay_client)[1], free["id"], "free-1")
    new_order(pay_client, deal["id"])
    rt = pay_app.extensions["lbs"]
    with rt.sessions() as session:  # that order's hold runs out, and is released
        done = expire(session, rt.payments, rt.secret_key, datetime.now(UTC) + timedelta(minutes=11), 1000)
    assert done.holds_released == 1
    declined_by, declined = new_order(pay_client, deal["id"])
    assert (
        pay_client.post(
            f"/v1/me/orders/{declined['id']}/test-payment",
            json={"card": "declined"},
            headers=bearer(declined_by),
        ).status_code
        == 402
    )
    refunder, _, refunded = new_voucher(pay_client, deal["id"])
    assert (
        pay_client.post(f"/v1/me/vouchers/{refunded['id']}/refund", headers=bearer(refunder)).status_code
        == 200
    )
    new_voucher(pay_client, deal["id"])  # a voucher held
    _, pending = new_order(pay_client, deal["id"])  # a hold standing
    assert stock_left(pay_client, deal["id"]) == 4

    with Session(engine) as session:
        books = check_books(session)
    assert books.balanced, books.problems()
    assert (books.vouchers_of[deal["id"]], books.vouchers_of[free["id"]]) == (2, 1)
    balanced = db_check(database_url)
    assert balanced.exit_code == 0, balanced.output
    assert "books balance" in balanced.output

    with engine.begin() as connection:  # a hold marked released without giving its unit back
        connection.execute(text("UPDATE orders SET status = 'expired' WHERE id = :id"), {"id": pending["id"]})
    unbalanced = db_check(database_url)
    assert unbalanced.exit_code == 1, unbalanced.output
    assert f"deal {deal['id']}: 2 claimed but 1 vouchers" in unbalanced.output
