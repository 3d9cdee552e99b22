"""Prepaid claims: users order and pay, poll their orders and refund vouchers; the provider's
webhook tells lbs what was paid (docs/payments.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal, cast

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbs.api.auth import USER, caller_digest, require_user
from lbs.api.context import READS, db_session, runtime, utc_now
from lbs.api.payment_schemas import OrderListOut, OrderOut, RefundOut, WebhookOut
from lbs.api.problems import Problem, register_model
from lbs.api.schemas import CONFLICTS, ERRORS, DealPath, QueryModel
from lbs.api.vouchers import ClaimHeaders, VoucherPath
from lbs.errors import InvalidParameter, NotFound, PaymentDeclined, PaymentProviderUnavailable
from lbs.metrics import PAYMENT_WEBHOOKS
from lbs.models import Order, ProviderEventSeen, Refund
from lbs.payments import orders, reconcile, refunds
from lbs.payments.provider import BadSignature, CardDeclined, PaymentProvider, ProviderError
from lbs.payments.writes import begin_write
from lbs.services import cursors
from lbs.services.cursors import Cursor
from lbs.services.request_bodies import JsonBody

buyer = APIBlueprint("orders", __name__, url_prefix="/v1", abp_tags=[Tag(name="payments")])
hooks = APIBlueprint("payment_hooks", __name__, url_prefix="/v1/payments", abp_tags=[Tag(name="payments")])
UNAVAILABLE: dict[str | int, Any] = {502: Problem, 503: Problem}
REFUND_EVENTS = ("charge.refunded", "refund.created", "refund.updated")
log = logging.getLogger(__name__)


@buyer.before_request
def _user_first() -> None:
    g.user_id = require_user()


def _provider() -> PaymentProvider:
    provider = runtime().payments
    if provider is None:
        raise NotFound("this server takes no payments (LBS_PAYMENT_PROVIDER is not set)")
    return provider


def order_view(order: Order, voucher_id: int | None, client_secret: str | None) -> dict[str, Any]:
    return {
        "id": order.id,
        "deal_id": order.deal_id,
        "merchant_id": order.merchant_id,
        "status": order.status,
        "amount_minor": order.amount_minor,
        "currency": order.currency,
        "refund_policy": order.refund_policy,
        "hold_expires_at": order.hold_expires_at.isoformat(),
        "created_at": order.created_at.isoformat(),
        "paid_at": None if order.paid_at is None else order.paid_at.isoformat(),
        "voucher_id": voucher_id,
        "payment": {
            "provider": order.provider,
            "intent_id": order.intent_id,
            "client_secret": client_secret if order.status == "pending" else None,
        },
    }


@buyer.post(
    "/deals/<int:deal_id>/orders",
    responses={201: OrderOut, 200: OrderOut, **ERRORS, **CONFLICTS, **UNAVAILABLE},
    security=USER,
)
def place_order(path: DealPath, header: ClaimHeaders) -> tuple[dict[str, Any], int]:
    """User: order a prepaid deal: one unit is held for it (LBS_PAYMENT_HOLD_S) while the
    client pays with payment.client_secret; the voucher is issued once the payment is
    confirmed. 201 with a new order, 200 with the same one for a repeated Idempotency-Key."""
    rt = runtime()
    rt.rate_limits.enforce(rt.rate_limits.claim, caller_digest(), "claim")
    hold = timedelta(seconds=rt.settings.payment_hold_s)
    placed = orders.place_order(
        db_session(), _provider(), g.user_id, path.deal_id, header.idempotency_key, utc_now(), hold
    )
    voucher_id = orders.voucher_of(db_session(), placed.order.id)
    return order_view(placed.order, voucher_id, placed.client_secret), 201 if placed.created else 200


@register_model
class OrderPath(BaseModel):
    order_id: int = Field(ge=1, le=2**63 - 1)


@register_model
class OrderListQuery(QueryModel):
    limit: int = Field(50, ge=1, le=100)
    cursor: Cursor | None = None


@buyer.get("/me/orders", responses={200: OrderListOut, **ERRORS}, security=USER)
def my_orders(query: OrderListQuery) -> dict[str, Any]:
    """User: its orders, newest first. Pages: pass next_cursor back as cursor."""
    session = db_session()
    before = cursors.decode_id(query.cursor, ["orders"], "") if query.cursor else None
    rows = orders.user_orders(session, g.user_id, query.limit + 1, before)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {
        "items": [order_view(o, orders.voucher_of(session, o.id), None) for o in rows],
        "next_cursor": cursors.encode_id(["orders"], rows[-1].id) if more else None,
    }


def _synced(order_id: int, *, paid_with: Literal["visa", "declined"] | None = None) -> dict[str, Any]:
    """The user's order, first brought in line with the provider while it is pending (the
    fallback for a webhook that is late or lost). Writes go to the primary database: a GET's
    own session may be on a read replica, so it syncs in a session of its own."""
    if request.method in READS:
        with runtime().sessions() as session:
            return _synced_in(session, order_id, paid_with)
    return _synced_in(db_session(), order_id, paid_with)


def _synced_in(
    session: Session, order_id: int, paid_with: Literal["visa", "declined"] | None
) -> dict[str, Any]:
    rt = runtime()
    order = orders.user_order(session, g.user_id, order_id)
    # No provider call inside a transaction: a write request's began as SQLite's write lock,
    # which every other writer would wait for while the provider answers.
    session.commit()
    secret = None
    if order.status == "pending" and order.intent_id is not None:
        provider = _provider()
        try:
            if paid_with is not None:
                try:
                    provider.pay_with_test_card(order.intent_id, paid_with)
                except CardDeclined:
                    orders.sync_order(session, provider, rt.secret_key, order, utc_now(), failed=True)
                    raise PaymentDeclined(
                        "the card was declined; the order was released: order again to retry",
                        order_status=order.status,
                    ) from None
                except ProviderError as refused:
                    # Refused, not unreachable: the intent was cancelled meanwhile (its hold
                    # ran out and `lbs payments expire` released it) or paid; the order says.
                    if refused.retryable:
                        raise
                    orders.sync_order(session, provider, rt.secret_key, order, utc_now())
                    if order.status == "pending":
                        raise
                    raise _not_pending(order) from None
            orders.sync_order(session, provider, rt.secret_key, order, utc_now())
            if order.status == "pending":
                secret = provider.get_intent(order.intent_id).client_secret
        except ProviderError as exc:
            raise PaymentProviderUnavailable(f"the payment provider did not answer: {exc}") from exc
    elif paid_with is not None:
        raise _not_pending(order)
    return order_view(order, orders.voucher_of(session, order.id), secret)


def _not_pending(order: Order) -> InvalidParameter:
    return InvalidParameter("order_id", f"order {order.id} is {order.status}, not pending: nothing to pay")


@buyer.get("/me/orders/<int:order_id>", responses={200: OrderOut, **ERRORS, **UNAVAILABLE}, security=USER)
def my_order(path: OrderPath) -> dict[str, Any]:
    """User: one of its orders; a pending one is checked with the provider first."""
    return _synced(path.order_id)


@register_model
class TestPaymentBody(JsonBody):
    model_config = ConfigDict(extra="forbid")

    card: Literal["visa", "declined"] = Field(
        "visa", description="visa: paid (Stripe's 4242 4242 4242 4242); declined: the card is refused"
    )


@buyer.post(
    "/me/orders/<int:order_id>/test-payment",
    responses={200: OrderOut, **ERRORS, 402: None, **UNAVAILABLE},
    security=USER,
)
def test_payment(path: OrderPath, body: TestPaymentBody) -> dict[str, Any]:
    """User, with test keys only (the demo, the tests): pay a pending order with a test card,
    as a client's Stripe.js would; 404 with live keys."""
    if not _provider().test_mode:
        raise NotFound("test payments exist only with the provider's test keys")
    return _synced(path.order_id, paid_with=body.card)


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "order_id": refund.order_id,
        "voucher_id": refund.voucher_id,
        "status": refund.status,
        "reason": refund.reason,
        "amount_minor": refund.amount_minor,
        "currency": refund.currency,
        "created_at": refund.created_at.isoformat(),
    }


@buyer.post(
    "/me/vouchers/<int:voucher_id>/refund", responses={200: RefundOut, **ERRORS, **CONFLICTS}, security=USER
)
def refund_voucher(path: VoucherPath) -> dict[str, Any]:
    """User: refund an unused prepaid voucher (deals with refund_policy anytime); the stock
    returns to the deal. A voucher redeemed first is a 409, and one refunded is never redeemed."""
    refund = refunds.refund_voucher(db_session(), _provider(), g.user_id, path.voucher_id, utc_now())
    return refund_view(refund)


@buyer.get("/me/vouchers/<int:voucher_id>/refund", responses={200: RefundOut, **ERRORS}, security=USER)
def voucher_refund(path: VoucherPath) -> dict[str, Any]:
    """User: the refund of one of its vouchers (404 if it has none)."""
    return refund_view(refunds.refund_of_voucher(db_session(), g.user_id, path.voucher_id))


@hooks.post("/stripe/webhook", responses={200: WebhookOut, 400: None, **UNAVAILABLE})
def stripe_webhook() -> dict[str, Any]:
    """Stripe: an event, signed (Stripe-Signature); applied at most once. A bad signature is
    a 400 and changes nothing; a 503 (the provider could not be asked) is retried by Stripe."""
    rt = runtime()
    provider = _provider()
    try:
        # werkzeug's Headers: a mapping whose lookups ignore case, as HTTP's do.
        headers = cast(Mapping[str, str], request.headers)
        event = provider.parse_webhook(request.get_data(cache=False), headers)
    except BadSignature as exc:
        PAYMENT_WEBHOOKS.labels("bad_signature").inc()
        raise InvalidParameter(
            "Stripe-Signature", f"the webhook's signature does not verify with the configured secret: {exc}"
        ) from None
    session = db_session()
    if session.get(ProviderEventSeen, event.id) is not None:
        PAYMENT_WEBHOOKS.labels("duplicate").inc()
        return {"received": True, "duplicate": True}
    order = orders.order_of_intent(session, event.intent_id) if event.intent_id else None
    if order is not None:
        # The event says which intent changed; its state now is read from the provider, so
        # that events arriving late or out of order cannot move an order backwards.
        try:
            orders.sync_order(
                session, provider, rt.secret_key, order, utc_now(),
                failed=event.type == "payment_intent.payment_failed",
            )  # fmt: skip
            if event.type in REFUND_EVENTS and order.status in ("paid", "refunded"):
                # A refund lbs did not hear back about, or one made on the provider's side.
                for difference in reconcile.order_refunds(session, provider, order, utc_now()):
                    log.log(logging.INFO if difference.repaired else logging.WARNING,
                            "webhook %s: order %d: %s", event.id, order.id, difference.what)  # fmt: skip
        except ProviderError as exc:
            raise PaymentProviderUnavailable(f"the payment provider did not answer: {exc}") from exc
    begin_write(session)
    session.add(
        ProviderEventSeen(id=event.id, provider=provider.name, type=event.type, received_at=utc_now())
    )
    try:
        session.commit()
    except IntegrityError:  # the same event, delivered twice at once: applied by the other
        session.rollback()
        PAYMENT_WEBHOOKS.labels("duplicate").inc()
        return {"received": True, "duplicate": True}
    PAYMENT_WEBHOOKS.labels("applied").inc()
    return {"received": True, "duplicate": False}
