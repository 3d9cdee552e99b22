"""localstripe's own webhook deliveries reach gunicorn and settle orders with no one polling.

The gunicorn under test is registered with localstripe as a webhook endpoint (its own id,
unregistered after); the client pays at the provider, as Stripe.js would, and never asks lbs
about the order: only the signed event can tell lbs, so the database is watched for the
voucher (a paid order) and for the released hold (a declined card).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from lbs.models import Deal, Order, ProviderEventSeen, Voucher
from lbs.payments.provider import CardDeclined
from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.prepaid_shop import WEBHOOK_PATH, place_order, prepaid_deal, provider, stripe_env, users_of
from tests.e2e.server import gunicorn
from tests.e2e.test_claim_contention import merchant_key, ok
from tests.payments_support import STRIPE_TEST_WEBHOOK_SECRET, register_webhook, unregister_webhook

pytestmark = pytest.mark.gunicorn

DELIVERY_TIMEOUT_S = 10.0  # localstripe delivers about a second after the payment


def wait_for_status(engine: Engine, order_id: int, status: str) -> tuple[str, int]:
    """The order's status and vouchers once it is ``status`` (or as they are at the timeout),
    read from the database only."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while True:
        with Session(engine) as session:
            now_status = session.execute(select(Order.status).where(Order.id == order_id)).scalar_one()
            vouchers = session.execute(
                select(func.count()).select_from(Voucher).where(Voucher.order_id == order_id)
            ).scalar_one()
        if now_status == status or time.monotonic() > deadline:
            return now_status, vouchers
        time.sleep(0.1)


def test_localstripe_webhook_settles_orders_without_a_poll(
    database_url: str, engine: Engine, localstripe: str, tmp_path: Path
) -> None:
    env = stripe_env(localstripe)
    with gunicorn(
        database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=2, env=env, serving_config=True
    ) as server:
        deal_id = prepaid_deal(server, merchant_key(server), 5)
        paying, declined = users_of(engine, 2)
        hook = register_webhook(
            localstripe, server.base_url + WEBHOOK_PATH, STRIPE_TEST_WEBHOOK_SECRET,
            webhook_id=f"e2e-{uuid.uuid4().hex}",
        )  # fmt: skip
        try:
            paid = ok(place_order(server, paying, deal_id, "order-paid"), 201)
            refused = ok(place_order(server, declined, deal_id, "order-declined"), 201)
            payments = provider(localstripe)
            assert payments.pay_with_test_card(paid["payment"]["intent_id"], "visa").status == "succeeded"
            with pytest.raises(CardDeclined):
                payments.pay_with_test_card(refused["payment"]["intent_id"], "declined")
            settled = wait_for_status(engine, paid["id"], "paid")
            released = wait_for_status(engine, refused["id"], "failed")
        finally:
            unregister_webhook(localstripe, hook)
        log = server.access_log.read_text().splitlines()

    assert settled == ("paid", 1), f"no voucher {DELIVERY_TIMEOUT_S} s after the payment: {settled}"
    assert released == ("failed", 0), f"the declined order's hold stands: {released}"
    # The deliveries: the only requests this test did not send (untagged in the access log).
    deliveries = [line.split(" ")[1] for line in log if line.endswith(" -")]
    assert deliveries and set(deliveries) == {"200"}, deliveries
    with Session(engine) as session:
        seen = set(session.scalars(select(ProviderEventSeen.type)))
        claimed = session.execute(select(Deal.quantity_claimed).where(Deal.id == deal_id)).scalar_one()
    assert {"payment_intent.succeeded", "payment_intent.payment_failed"} <= seen, seen
    assert claimed == 1  # the voucher's unit; the declined order's went back to stock
    # The declined intent was cancelled as its order was released: it cannot be paid later.
    assert payments.get_intent(refused["payment"]["intent_id"]).status == "canceled"
