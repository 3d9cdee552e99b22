"""`lbs payments expire`: what time alone decides, safe to run twice at once and during traffic.

1. Pending orders whose hold has run out: their intents are cancelled and the units released
   (or, if the payment succeeded meanwhile, the voucher issued: sync_order).
2. Unused prepaid vouchers past their expiry: refunded if their deal allows refunds, else
   earned by their merchant (settled like a redemption).
3. Refunds still pending (the provider did not answer when they were made): sent again.

Each step moves rows by conditional updates, so two runs at once share the work and never
do one thing twice; the provider calls carry idempotency keys for the same reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lbs.errors import Conflict
from lbs.models import Order, Voucher
from lbs.payments.orders import due_for_expiry, sync_order
from lbs.payments.periods import period_start
from lbs.payments.provider import PaymentProvider, ProviderError
from lbs.payments.refunds import pending_refunds, send_refund, start_voucher_refund, unused
from lbs.payments.writes import begin_write
from lbs.services.redemption import commission

log = logging.getLogger(__name__)
BATCH = 1000


@dataclass
class Expired:
    holds_released: int = 0
    paid_meanwhile: int = 0
    vouchers_refunded: int = 0
    vouchers_earned: int = 0
    refunds_sent: int = 0
    provider_errors: int = 0
    notes: list[str] = field(default_factory=list)


def expire(
    session: Session, provider: PaymentProvider, secret_key: bytes, now: datetime, commission_bps: int
) -> Expired:
    done = Expired()
    _release_holds(session, provider, secret_key, now, done)
    _expire_vouchers(session, provider, now, commission_bps, done)
    for refund in pending_refunds(session, BATCH):
        session.commit()
        if send_refund(session, provider, refund, now):
            done.refunds_sent += 1
    session.commit()
    return done


def _release_holds(
    session: Session, provider: PaymentProvider, secret_key: bytes, now: datetime, done: Expired
) -> None:
    for order in due_for_expiry(session, now, BATCH):
        try:
            sync_order(session, provider, secret_key, order, now)
        except ProviderError as exc:
            session.rollback()
            done.provider_errors += 1
            done.notes.append(f"order {order.id}: the provider did not answer ({exc}); left for the next run")
            continue
        if order.status in ("expired", "failed", "canceled"):
            done.holds_released += 1
        elif order.status == "paid":
            done.paid_meanwhile += 1


def _expire_vouchers(
    session: Session, provider: PaymentProvider, now: datetime, commission_bps: int, done: Expired
) -> None:
    due = session.execute(
        select(Voucher, Order)
        .join(Order, Order.id == Voucher.order_id)
        .where(
            *unused(),
            Voucher.expires_at <= now,
        )
        .order_by(Voucher.expires_at)
        .limit(BATCH)
    ).all()
    session.commit()
    for voucher, order in due:
        begin_write(session)
        if order.refund_policy == "none":
            earned = session.execute(
                update(Voucher)
                .where(Voucher.id == voucher.id, *unused())
                .values(
                    earned_at=now,
                    commission_minor=commission(voucher.price_minor, commission_bps),
                    settlement_period=period_start(now),
                )
                .returning(Voucher.id),
                execution_options={"synchronize_session": False},
            ).scalar_one_or_none()
            session.commit()
            done.vouchers_earned += earned is not None
            continue
        try:
            refund = start_voucher_refund(session, voucher, order, "expiry", now)
        except Conflict:  # another run, the holder or the counter got there first
            session.rollback()
            continue
        session.commit()
        done.vouchers_refunded += 1
        send_refund(session, provider, refund, now)
