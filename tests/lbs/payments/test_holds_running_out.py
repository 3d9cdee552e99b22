"""Holds that run out while a request is in flight, and the expiry job beside traffic: each
race of tests/e2e/test_prepaid_contention.py and test_refund_races.py, made to happen here in
a fixed order (the e2e tests meet them only now and then)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.cli import main
from lbs.db import make_session_factory
from lbs.models import Order, Voucher
from lbs.payments import orders, refunds
from lbs.payments.expiry import expire
from lbs.payments.provider import Intent
from lbs.payments.stripe_adapter import StripeProvider
from tests.conftest import TEST_SECRET_KEY
from tests.deals_factory import bearer, create_deal, make_merchant, make_user
from tests.lbs.payments.conftest import SECRET_KEY, WEBHOOK_SECRET

HOLD = timedelta(minutes=10)


def _deal(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    _, key = make_merchant(client)
    return create_deal(client, key, publish=True, payment="prepaid", quantity_total=3, **overrides)


def _order(client: FlaskClient, token: str, deal_id: int) -> Any:
    return client.post(
        f"/v1/deals/{deal_id}/orders", headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex}
    )


def _stock(client: FlaskClient, deal_id: int) -> int:
    return int(client.get(f"/v1/deals/{deal_id}").get_json()["stock_left"])


def test_a_test_payment_of_an_intent_cancelled_meanwhile_is_not_pending(
    pay_app: OpenAPI, pay_client: FlaskClient
) -> None:
    """The expiry job cancelled the intent after the request read its order as pending: the
    provider refuses the payment, and the answer is the order released, not a 503."""
    deal = _deal(pay_client)
    _, token = make_user(pay_client)
    order = _order(pay_client, token, deal["id"]).get_json()
    pay_app.extensions["lbs"].payments.cancel_intent(
        order["payment"]["intent_id"], key=f"test-{uuid.uuid4()}"
    )
    paid = pay_client.post(f"/v1/me/orders/{order['id']}/test-payment", json={}, headers=bearer(token))
    assert paid.status_code == 400, paid.get_json()
    assert paid.get_json()["detail"] == f"order {order['id']} is canceled, not pending: nothing to pay"
    assert _stock(pay_client, deal["id"]) == 3


class _SlowToStore(StripeProvider):
    """The provider as seen by a request whose intent is made just as its hold runs out: the
    expiry job runs (in its own session) between the intent's making and its storing."""

    def __init__(self, localstripe: str, job: Any) -> None:
        super().__init__(SECRET_KEY, WEBHOOK_SECRET, localstripe)
        self.job = job

    def create_intent(self, *, amount_minor: int, currency: str, order_ref: str, key: str) -> Intent:
        intent = super().create_intent(
            amount_minor=amount_minor, currency=currency, order_ref=order_ref, key=key
        )
        self.job(order_ref)
        return intent


def test_an_order_released_before_its_intent_is_stored_has_it_cancelled(
    pay_app: OpenAPI, pay_client: FlaskClient, localstripe: str
) -> None:
    rt = pay_app.extensions["lbs"]

    def expiry_job(_order_ref: str) -> None:
        with rt.sessions() as session:
            expire(session, rt.payments, rt.secret_key, datetime.now(UTC) + HOLD, 1000)

    paying = rt.payments
    rt.payments = _SlowToStore(localstripe, expiry_job)
    try:
        deal = _deal(pay_client)
        _, token = make_user(pay_client)
        placed = _order(pay_client, token, deal["id"])
    finally:
        rt.payments = paying
    order = placed.get_json()
    assert placed.status_code == 201, order
    assert order["status"] == "expired" and order["payment"]["client_secret"] is None, order
    assert paying.get_intent(order["payment"]["intent_id"]).status == "canceled"  # never to be paid
    assert _stock(pay_client, deal["id"]) == 3


def test_expiry_does_not_release_an_order_whose_intent_was_stored_meanwhile(
    pay_app: OpenAPI, pay_client: FlaskClient, localstripe: str
) -> None:
    """The job read the order before its intent was stored, and releases it after: it must
    not, since the client now has the secret and may be paying."""
    rt = pay_app.extensions["lbs"]
    job_session = make_session_factory(rt.engine)()
    seen: list[Order] = []

    def job_reads(order_ref: str) -> None:  # the job's read of the due orders, before the store
        seen.append(job_session.execute(select(Order).where(Order.ref == order_ref)).scalar_one())

    deal = _deal(pay_client)
    user_id, _ = make_user(pay_client)
    with rt.sessions() as session:
        placed = orders.place_order(
            session, _SlowToStore(localstripe, job_reads), user_id, deal["id"], "k", datetime.now(UTC), HOLD
        )
    stale = seen[0]
    assert (stale.intent_id, placed.order.status) == (None, "pending")
    later = datetime.now(UTC) + HOLD
    orders.sync_order(job_session, rt.payments, rt.secret_key, stale, later)
    assert stale.status == "pending", "released while its client could be paying"
    # The next run finds its intent, cancels it and releases the order.
    orders.sync_order(job_session, rt.payments, rt.secret_key, stale, later)
    job_session.close()
    assert stale.status == "expired" and stale.intent_id == placed.order.intent_id
    assert rt.payments.get_intent(stale.intent_id).status == "canceled"


def test_send_refund_leaves_no_transaction_open(pay_app: OpenAPI, pay_client: FlaskClient) -> None:
    """The expiry job refunds one voucher after another in one session: a transaction left
    open by the last refund made the next one's write an upgrade (SQLite: database is locked)."""
    deal = _deal(pay_client)
    user_id, token = make_user(pay_client)
    order = _order(pay_client, token, deal["id"]).get_json()
    paid = pay_client.post(f"/v1/me/orders/{order['id']}/test-payment", json={}, headers=bearer(token))
    rt = pay_app.extensions["lbs"]
    with rt.sessions() as session:
        refund = refunds.refund_voucher(
            session, rt.payments, user_id, paid.get_json()["voucher_id"], datetime.now(UTC)
        )
        assert refund.status == "succeeded"
        assert not session.in_transaction()


def test_expire_at_a_given_time(pay_client: FlaskClient, database_url: str, localstripe: str) -> None:
    deal = _deal(pay_client, redeem_within_minutes=30)
    _, token = make_user(pay_client)
    order = _order(pay_client, token, deal["id"]).get_json()
    pay_client.post(f"/v1/me/orders/{order['id']}/test-payment", json={}, headers=bearer(token))
    env = {
        "LBS_DATABASE_URL": database_url, "LBS_SECRET_KEY": TEST_SECRET_KEY, "LBS_PAYMENT_PROVIDER": "stripe",
        "LBS_STRIPE_SECRET_KEY": SECRET_KEY, "LBS_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LBS_STRIPE_API_BASE": localstripe,
    }  # fmt: skip
    naive = CliRunner().invoke(main, ["payments", "expire", "--at", "2026-12-24T18:00:00"], env=env)
    assert naive.exit_code == 2 and "expected ISO 8601 with an offset" in naive.output, naive.output
    now = CliRunner().invoke(main, ["payments", "expire"], env=env)
    assert now.exit_code == 0 and "expired vouchers refunded 0," in now.output, now.output
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = CliRunner().invoke(main, ["payments", "expire", "--at", at], env=env)
    assert later.exit_code == 0 and "expired vouchers refunded 1," in later.output, later.output
    with Session(pay_client.application.extensions["lbs"].engine) as session:
        voucher = session.execute(select(Voucher).where(Voucher.order_id == order["id"])).scalar_one()
    assert voucher.refunded_at is not None
