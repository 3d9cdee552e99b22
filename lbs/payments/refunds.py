"""Refunds: an unused prepaid voucher's money back to its holder, once.

A refund is decided in the database first and sent to the provider after: the voucher is
marked refunded by the same kind of conditional update redemption makes (``redeemed_at IS
NULL AND refunded_at IS NULL``), so of a refund and a redemption racing for a voucher exactly
one commits. The refund row is then pending until the provider has it; a pending refund is
sent again with the same idempotency key (by ``lbs payments expire`` and reconcile) until it
is, and the provider makes it once however often it is sent.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from lbs.errors import NotFound, NotRefundable, VoucherAlreadyRedeemed, VoucherRefunded
from lbs.metrics import PAYMENT_PROVIDER_ERRORS, PAYMENT_REFUNDS
from lbs.models import Order, Refund, Voucher
from lbs.payments.provider import PaymentProvider, ProviderError
from lbs.payments.writes import begin_write
from lbs.services.vouchers import release_unit

log = logging.getLogger(__name__)


def refund_key(refund: Refund) -> str:
    return f"lbs:refund:{refund.ref}"


def new_refund(session: Session, order: Order, voucher_id: int | None, reason: str, now: datetime) -> Refund:
    refund = Refund(
        ref=uuid.uuid4().hex, order_id=order.id, voucher_id=voucher_id, amount_minor=order.amount_minor,
        currency=order.currency, reason=reason, status="pending", created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(refund)
    session.flush()
    return refund


def unused() -> tuple[ColumnElement[bool], ...]:
    """A voucher neither redeemed, refunded nor earned: what a refund, an expiry's earning
    and the expiry job's search all require, each by its own conditional update."""
    return (Voucher.redeemed_at.is_(None), Voucher.refunded_at.is_(None), Voucher.earned_at.is_(None))


def start_voucher_refund(
    session: Session, voucher: Voucher, order: Order, reason: str, now: datetime
) -> Refund:
    """Mark the voucher refunded and its stock released, in the caller's transaction; raises
    if it was redeemed, refunded or earned first."""
    won = session.execute(
        update(Voucher)
        .where(Voucher.id == voucher.id, *unused())
        .values(refunded_at=now)
        .returning(Voucher.id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    session.refresh(voucher)
    if won is None:
        if voucher.redeemed_at is not None:
            raise VoucherAlreadyRedeemed(
                f"this voucher was redeemed at {voucher.redeemed_at.isoformat()}: it cannot be refunded",
                redeemed_at=voucher.redeemed_at.isoformat(),
            )
        if voucher.refunded_at is not None:
            raise VoucherRefunded(
                f"this voucher was refunded at {voucher.refunded_at.isoformat()}",
                refunded_at=voucher.refunded_at.isoformat(),
            )
        raise NotRefundable("this voucher expired under a no-refunds deal: its merchant has earned it")
    release_unit(session, voucher.deal_id, voucher.user_id)
    return new_refund(session, order, voucher.id, reason, now)


def send_refund(session: Session, provider: PaymentProvider, refund: Refund, now: datetime) -> bool:
    """Ask the provider for the refund (again, with the same key, if it was asked before);
    commits. True once the provider has made it."""
    intent_id = session.execute(select(Order.intent_id).where(Order.id == refund.order_id)).scalar_one()
    assert intent_id is not None, "a paid order has an intent"
    # Not inside the read's transaction: on SQLite the write below would upgrade it, and fail
    # at once ("database is locked") if another writer committed meanwhile.
    session.commit()
    try:
        made = provider.refund(intent_id, refund.amount_minor, refund_ref=refund.ref, key=refund_key(refund))
    except ProviderError as exc:
        # Left pending: sent again by the next `lbs payments expire` or reconcile.
        log.warning("refund %d: the provider did not make it yet: %s", refund.id, exc)
        PAYMENT_PROVIDER_ERRORS.inc()
        return False
    begin_write(session)
    session.execute(
        update(Refund)
        .where(Refund.id == refund.id, Refund.status == "pending")
        .values(status=made.status, provider_refund_id=made.id, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    # Read before the commit: after it, the read would leave a transaction open that the
    # caller's next begin_write could not make a write one (SQLite: "database is locked").
    session.refresh(refund)
    session.commit()
    if made.status == "succeeded":
        PAYMENT_REFUNDS.labels(refund.reason).inc()
    return made.status == "succeeded"


def refund_voucher(
    session: Session, provider: PaymentProvider, user_id: int, voucher_id: int, now: datetime
) -> Refund:
    """The holder's refund of an unused voucher of a deal that allows it."""
    voucher = session.execute(
        select(Voucher).where(Voucher.id == voucher_id, Voucher.user_id == user_id)
    ).scalar_one_or_none()
    if voucher is None:
        raise NotFound(f"you have no voucher {voucher_id}")
    if voucher.order_id is None:
        raise NotRefundable("this voucher was claimed free: nothing was paid, so nothing is refunded")
    order = session.get(Order, voucher.order_id)
    assert order is not None
    if order.refund_policy == "none":
        raise NotRefundable("this deal was sold without refunds (refund_policy none), as shown before paying")
    begin_write(session)
    refund = start_voucher_refund(session, voucher, order, "user", now)
    session.commit()
    send_refund(session, provider, refund, now)
    return refund


def refund_of_voucher(session: Session, user_id: int, voucher_id: int) -> Refund:
    """The refund of one of the user's vouchers. Ownership is checked first, so another's
    voucher is a 404 that says no more than one never made (not whether it was refunded)."""
    owned = session.execute(
        select(Voucher.id).where(Voucher.id == voucher_id, Voucher.user_id == user_id)
    ).scalar_one_or_none()
    if owned is None:
        raise NotFound(f"you have no voucher {voucher_id}")
    refund = session.execute(select(Refund).where(Refund.voucher_id == voucher_id)).scalar_one_or_none()
    if refund is None:
        raise NotFound(f"voucher {voucher_id} has no refund")
    return refund


def pending_refunds(session: Session, limit: int) -> list[Refund]:
    """Refunds the provider has not answered yet: to be sent again with their key. One the
    provider took but keeps pending (it has its id) is never sent again, since a key is
    remembered for 24 hours only and a second refund could follow: reconcile and the refund
    webhooks read how it ends."""
    query = select(Refund).where(Refund.status == "pending", Refund.provider_refund_id.is_(None))
    return list(session.scalars(query.order_by(Refund.id).limit(limit)))
