"""The provider is called outside any database transaction: another process writing while
the provider answers (the webhook of the same payment on another worker, traffic beside
`lbs payments expire`) must not fail the call's own write. On SQLite (WAL) a read
transaction held open across the provider call cannot become a write once another
connection has committed (SQLITE_BUSY: a 503 to the holder, a crash of the job).

The sessions here are made as the `lbs payments` commands make them (lbs.db's factory:
what a session loaded stays loaded across its commits)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from lbs.db import make_session_factory
from lbs.models import Order, ProviderEventSeen, Voucher
from lbs.payments.expiry import expire
from lbs.payments.provider import Intent, PaymentProvider, ProviderRefund
from lbs.payments.refunds import refund_voucher
from tests.deals_factory import bearer, create_deal, make_merchant, make_user


class WritesWhileAnswering:
    """The app's provider, with another connection committing a write as it answers."""

    def __init__(self, provider: PaymentProvider, engine: Engine) -> None:
        self._provider = provider
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    def _another_write(self) -> None:
        with self._engine.begin() as other:
            other.execute(
                insert(ProviderEventSeen).values(
                    id=f"evt_{uuid.uuid4().hex}", provider="stripe", type="payment_intent.succeeded",
                    received_at=datetime.now(UTC),
                )
            )  # fmt: skip

    def get_intent(self, intent_id: str) -> Intent:
        intent = self._provider.get_intent(intent_id)
        self._another_write()
        return intent

    def refund(self, intent_id: str, amount_minor: int, *, refund_ref: str, key: str) -> ProviderRefund:
        made = self._provider.refund(intent_id, amount_minor, refund_ref=refund_ref, key=key)
        self._another_write()
        return made


def _order(client: FlaskClient, token: str, deal_id: int) -> Any:
    headers = {**bearer(token), "Idempotency-Key": uuid.uuid4().hex}
    return client.post(f"/v1/deals/{deal_id}/orders", headers=headers).get_json()


def test_a_refund_made_while_another_process_writes_succeeds(
    pay_app: OpenAPI, pay_client: FlaskClient, engine: Engine
) -> None:
    _, merchant_key = make_merchant(pay_client)
    deal = create_deal(pay_client, merchant_key, publish=True, payment="prepaid")
    user_id, token = make_user(pay_client)
    order = _order(pay_client, token, deal["id"])
    paid = pay_client.post(
        f"/v1/me/orders/{order['id']}/test-payment", json={"card": "visa"}, headers=bearer(token)
    ).get_json()
    assert paid["status"] == "paid", paid
    provider = WritesWhileAnswering(pay_app.extensions["lbs"].payments, engine)

    with make_session_factory(engine)() as session:
        refund = refund_voucher(session, provider, user_id, paid["voucher_id"], datetime.now(UTC))

    assert refund.status == "succeeded" and refund.provider_refund_id is not None
    with Session(engine) as session:
        voucher = session.get(Voucher, paid["voucher_id"])
        assert voucher is not None and voucher.refunded_at is not None


def test_expire_releases_holds_while_another_process_writes(
    pay_app: OpenAPI, pay_client: FlaskClient, engine: Engine
) -> None:
    _, merchant_key = make_merchant(pay_client)
    deal = create_deal(pay_client, merchant_key, publish=True, payment="prepaid", quantity_total=2)
    held = [_order(pay_client, make_user(pay_client)[1], deal["id"]) for _ in range(2)]
    rt = pay_app.extensions["lbs"]
    provider = WritesWhileAnswering(rt.payments, engine)

    with make_session_factory(engine)() as session:
        done = expire(session, provider, rt.secret_key, datetime.now(UTC) + timedelta(hours=1), 1000)

    assert (done.holds_released, done.provider_errors) == (2, 0), done.notes
    with Session(engine) as session:
        assert {session.get(Order, o["id"]).status for o in held} == {"expired"}  # type: ignore[union-attr]
    assert pay_client.get(f"/v1/deals/{deal['id']}").get_json()["stock_left"] == 2
