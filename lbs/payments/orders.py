"""Orders: a prepaid claim holds one unit of stock while the provider takes the money.

An order moves once, from pending, by a conditional update that names the state it leaves
(``WHERE status = 'pending'``): whoever makes it (the webhook, the paying client's poll,
``lbs payments expire``, reconcile, on any worker) does what the move means, and everyone
else finds no row and does nothing. So a duplicated, replayed or reordered event, or two
jobs at once, issue one voucher or release one hold, never two.

    pending --paid-->     paid      the voucher is issued (the held unit becomes it)
    pending --failed/canceled/expired--> (released: the unit back to stock)
    released --paid late--> paid     if a unit is still to be had, else refunded

The provider is never called inside a transaction: the hold is committed before the intent
is made, and an intent's state is read before the transaction that applies it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbs.errors import (
    IdempotencyKeyReused,
    LbsError,
    NotFound,
    NotPrepaid,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
)
from lbs.metrics import PAYMENT_ORDERS, PAYMENT_PROVIDER_ERRORS
from lbs.models import Deal, Merchant, Order, Refund, Voucher
from lbs.payments.provider import Intent, PaymentProvider, ProviderError
from lbs.payments.refunds import new_refund, send_refund
from lbs.payments.writes import begin_write
from lbs.services.deal_offers import DealAt, public_deal
from lbs.services.vouchers import issue_paid_voucher, not_claimable, release_unit, take_unit

log = logging.getLogger(__name__)
T = TypeVar("T")

RELEASED = ("failed", "canceled", "expired")


def intent_key(order: Order) -> str:
    return f"lbs:order:{order.ref}:intent"


def cancel_key(order: Order) -> str:
    return f"lbs:order:{order.ref}:cancel"


@dataclass(frozen=True)
class Placed:
    order: Order
    # While the order is pending: what the paying client confirms the payment with.
    client_secret: str | None
    created: bool


def _by_key(session: Session, user_id: int, key: str) -> Order | None:
    return session.execute(
        select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)
    ).scalar_one_or_none()


def _replay(provider: PaymentProvider, order: Order, deal_id: int, key: str) -> Placed:
    if order.deal_id != deal_id:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was used to order deal {order.deal_id}, not {deal_id}; "
            "use a new key for a new order",
            field="Idempotency-Key",
        )
    secret = None
    if order.status == "pending" and order.intent_id is not None:
        secret = _provider_call(lambda: provider.get_intent(order.intent_id or "")).client_secret
    return Placed(order, secret, created=False)


def _provider_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except ProviderError as exc:
        log.warning("payment provider: %s", exc)
        raise PaymentProviderUnavailable(
            "the payment provider did not answer; retry with the same Idempotency-Key "
            "(nothing is charged twice)"
        ) from exc


def place_order(
    session: Session,
    provider: PaymentProvider,
    user_id: int,
    deal_id: int,
    key: str,
    now: datetime,
    hold: timedelta,
) -> Placed:
    """A pending order holding one unit for ``hold``, and its intent's client secret; or the
    order this Idempotency-Key already made (created=False)."""
    existing = _by_key(session, user_id, key)
    if existing is not None:
        return _replay(provider, existing, deal_id, key)
    offer = public_deal(session, deal_id, now)
    if not offer.claimable:
        raise not_claimable(offer)
    deal = offer.deal
    if deal.payment != "prepaid":
        raise NotPrepaid(
            f"deal {deal.id} is claimed free and paid at the counter: POST /v1/deals/{deal.id}/claim",
            claim_url=f"/v1/deals/{deal.id}/claim",
        )
    order = Order(
        ref=uuid.uuid4().hex, deal_id=deal.id, merchant_id=deal.merchant_id, user_id=user_id,
        idempotency_key=key, amount_minor=deal.deal_price_minor, currency=deal.currency,
        refund_policy=deal.refund_policy, status="pending", provider=provider.name,
        hold_expires_at=now + hold, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(order)
    try:
        session.flush()  # first write: a concurrent request with this key waits here, then replays
    except IntegrityError:
        session.rollback()
        existing = _by_key(session, user_id, key)
        if existing is None:
            raise
        return _replay(provider, existing, deal_id, key)
    take_unit(session, offer, user_id, now)
    session.commit()  # the hold stands before the provider is asked
    PAYMENT_ORDERS.labels("pending").inc()

    try:
        intent = provider.create_intent(
            amount_minor=order.amount_minor,
            currency=order.currency,
            order_ref=order.ref,
            key=intent_key(order),
        )
    except ProviderError as exc:
        log.warning("payment provider: order %d: %s", order.id, exc)
        PAYMENT_PROVIDER_ERRORS.inc()
        begin_write(session)
        _release(session, order, "failed", now)
        session.commit()
        if not exc.retryable:
            raise PaymentProviderRefused(
                f"the payment provider refused the order ({exc}); nothing was charged, and it was released"
            ) from exc
        raise PaymentProviderUnavailable(
            "the payment provider did not answer; nothing was charged, and the order was released: "
            "order again (a new Idempotency-Key)"
        ) from exc
    begin_write(session)
    session.execute(
        update(Order).where(Order.id == order.id).values(intent_id=intent.id, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    session.commit()
    session.refresh(order)
    if order.status != "pending":
        # Its hold ran out while the intent was being made, and `lbs payments expire`
        # released it, finding no intent to cancel: cancelled here, so that it is never paid.
        try:
            provider.cancel_intent(intent.id, key=cancel_key(order))
        except ProviderError as exc:
            log.warning("payment provider: order %d: its intent is left uncancelled: %s", order.id, exc)
        return Placed(order, None, created=True)
    return Placed(order, intent.client_secret, created=True)


def _move(
    session: Session,
    order: Order,
    from_: tuple[str, ...],
    to: str,
    now: datetime,
    *also: ColumnElement[bool],
    **values: object,
) -> bool:
    """The order from one of ``from_`` to ``to``, if no one moved it first (and ``also`` holds)."""
    moved = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status.in_(from_), *also)
        .values(status=to, updated_at=now, **values)
        .returning(Order.id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    session.refresh(order)
    return moved is not None


def _release(session: Session, order: Order, status: str, now: datetime, *also: ColumnElement[bool]) -> None:
    if _move(session, order, ("pending",), status, now, *also):
        release_unit(session, order.deal_id, order.user_id)


def _paid(session: Session, secret_key: bytes, order: Order, intent: Intent, now: datetime) -> Refund | None:
    """Apply a succeeded intent; the refund to send if a late payment found no unit left."""
    if (intent.amount_minor, intent.currency) != (order.amount_minor, order.currency):
        # Only a bug or a tampered intent gets here: nothing is issued; reconcile reports it.
        log.error("order %d: the provider took %d %s, the order is for %d %s", order.id,
                  intent.amount_minor, intent.currency, order.amount_minor, order.currency)  # fmt: skip
        return None
    deal = session.get(Deal, order.deal_id)
    assert deal is not None
    if order.status == "pending":
        if _move(session, order, ("pending",), "paid", now, paid_at=now):
            issue_paid_voucher(session, secret_key, deal, order, now)
        return None
    if order.status not in RELEASED:
        return None
    # Paid after its hold was released (a payment completing as the hold expired): a unit
    # again if the deal still has one for this user, else the money goes back.
    before = order.status
    tz = session.execute(select(Merchant.timezone).where(Merchant.id == deal.merchant_id)).scalar_one()
    offer = DealAt.of(deal, tz, now)
    try:
        with session.begin_nested():
            if not offer.claimable:
                raise not_claimable(offer)
            take_unit(session, offer, order.user_id, now)
            if not _move(session, order, (before,), "paid", now, paid_at=now):
                raise _LostRace
    except _LostRace:
        return None
    except LbsError:
        if _move(session, order, (before,), "refunded", now, paid_at=now):
            return new_refund(session, order, None, "late_payment", now)
        return None
    issue_paid_voucher(session, secret_key, deal, order, now)
    return None


class _LostRace(Exception):
    """Another process moved the order first: roll back the unit taken for it."""


def sync_order(
    session: Session,
    provider: PaymentProvider,
    secret_key: bytes,
    order: Order,
    now: datetime,
    *,
    failed: bool = False,
) -> None:
    """Bring the order in line with its intent at the provider.

    Commits what the session holds first (no provider call is made inside a transaction),
    then applies the intent's state in one transaction. ``failed``: the provider said a
    payment attempt failed (its webhook); the hold is released then, and the intent
    cancelled so that it cannot be paid afterwards. Raises ProviderError when the provider
    cannot be asked (nothing changed then)."""
    session.commit()
    if order.intent_id is None:
        # The intent was never made, or its id never stored (a crash in between): the
        # client never had its secret, so nothing was paid through it.
        if order.status == "pending" and now >= order.hold_expires_at:
            begin_write(session)
            # Not if the intent was stored meanwhile: its client may be paying it now.
            _release(session, order, "expired", now, Order.intent_id.is_(None))
            session.commit()
        return
    intent = provider.get_intent(order.intent_id)
    if (
        intent.status not in ("succeeded", "canceled")
        and order.status == "pending"
        and (failed or now >= order.hold_expires_at)
    ):
        intent = provider.cancel_intent(intent.id, key=cancel_key(order))
    begin_write(session)
    session.refresh(order)
    before = order.status
    refund = None
    if intent.status == "succeeded":
        refund = _paid(session, secret_key, order, intent, now)
    elif intent.status == "canceled":
        why = "failed" if failed else "expired" if now >= order.hold_expires_at else "canceled"
        _release(session, order, why, now)
    session.commit()
    if order.status != before:
        PAYMENT_ORDERS.labels(order.status).inc()
    if refund is not None:
        send_refund(session, provider, refund, now)


def order_of_intent(session: Session, intent_id: str) -> Order | None:
    return session.execute(select(Order).where(Order.intent_id == intent_id)).scalar_one_or_none()


def user_order(session: Session, user_id: int, order_id: int) -> Order:
    order = session.execute(
        select(Order).where(Order.id == order_id, Order.user_id == user_id)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(f"you have no order {order_id}")
    return order


def user_orders(session: Session, user_id: int, limit: int, before: int | None) -> list[Order]:
    query = select(Order).where(Order.user_id == user_id)
    if before is not None:
        query = query.where(Order.id < before)
    return list(session.scalars(query.order_by(Order.id.desc()).limit(limit)))


def voucher_of(session: Session, order_id: int) -> int | None:
    return session.execute(select(Voucher.id).where(Voucher.order_id == order_id)).scalar_one_or_none()


def due_for_expiry(session: Session, now: datetime, limit: int) -> list[Order]:
    """Pending orders whose hold has run out, oldest first."""
    return list(
        session.scalars(
            select(Order)
            .where(Order.status == "pending", Order.hold_expires_at <= now)
            .order_by(Order.hold_expires_at)
            .limit(limit)
        )
    )
