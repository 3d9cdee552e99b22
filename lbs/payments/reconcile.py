"""`lbs payments reconcile`: the provider's state against lbs's, each difference repaired or reported.

Walks lbs's own orders (the provider is asked about each by id: no list filters needed, which
localstripe lacks) from ``since`` on, and every order still pending whatever its age:

- an intent paid or cancelled at the provider that lbs did not hear of (a lost webhook):
  applied as the webhook would have (sync_order), repaired;
- a refund lbs asked for that the provider has (lbs did not hear back): recorded, repaired;
- a refund made on the provider's side (its dashboard): an unused voucher is marked
  refunded and its unit released, repaired; a voucher already redeemed or earned cannot be
  taken back, so that one is reported for a person to settle;
- a refund lbs counts as made that the provider does not have, or an intent whose amount is
  not the order's: reported;
- refunds still pending: sent again (same idempotency key); one the provider still does not
  make (it refuses, or does not answer) is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from lbs.errors import Conflict
from lbs.models import Order, Refund, Voucher
from lbs.payments.orders import sync_order
from lbs.payments.provider import PaymentProvider, ProviderError, ProviderRefund
from lbs.payments.refunds import pending_refunds, send_refund, start_voucher_refund
from lbs.payments.writes import begin_write


@dataclass(frozen=True)
class Difference:
    order_id: int
    what: str
    repaired: bool


def reconcile(
    session: Session, provider: PaymentProvider, secret_key: bytes, now: datetime, since: datetime
) -> list[Difference]:
    found: list[Difference] = []
    orders = list(
        session.scalars(
            select(Order)
            .where(Order.intent_id.is_not(None), or_(Order.status == "pending", Order.created_at >= since))
            .order_by(Order.id)
        )
    )
    session.commit()
    for order in orders:
        try:
            found += _order(session, provider, secret_key, order, now)
        except ProviderError as exc:
            session.rollback()
            found.append(Difference(order.id, f"the provider did not answer ({exc}); not checked", False))
    for refund in pending_refunds(session, 10_000):
        session.commit()
        if send_refund(session, provider, refund, now):
            found.append(Difference(refund.order_id, f"refund {refund.id} was pending: made now", True))
        elif refund.provider_refund_id is None:
            # Refused (the charge refunded some other way, a balance short) or not answered: a
            # refund lbs promised that the provider has not made is for a person to see.
            what = f"refund {refund.id} is pending: the provider did not make it (logged), tried next run"
            found.append(Difference(refund.order_id, what, False))
    session.commit()
    return found


def _order(
    session: Session, provider: PaymentProvider, secret_key: bytes, order: Order, now: datetime
) -> list[Difference]:
    assert order.intent_id is not None
    intent = provider.get_intent(order.intent_id)
    found = []
    if (intent.amount_minor, intent.currency) != (order.amount_minor, order.currency):
        what = f"the provider's intent is for {intent.amount_minor} {intent.currency}, the order for "
        return [Difference(order.id, what + f"{order.amount_minor} {order.currency}", False)]
    before = order.status
    paid_there = intent.status == "succeeded" and before != "paid" and before != "refunded"
    if paid_there or (intent.status == "canceled" and before == "pending"):
        sync_order(session, provider, secret_key, order, now)
        if order.status != before:
            found.append(
                Difference(
                    order.id, f"{intent.status} at the provider, {before} here: now {order.status}", True
                )
            )
    if intent.status == "succeeded" and order.status in ("paid", "refunded"):
        found += order_refunds(session, provider, order, now)
    return found


def order_refunds(
    session: Session, provider: PaymentProvider, order: Order, now: datetime
) -> list[Difference]:
    """The order's refunds at the provider against lbs's (a refund event's webhook, reconcile)."""
    assert order.intent_id is not None
    theirs = provider.list_refunds(order.intent_id)
    session.commit()
    ours = list(session.scalars(select(Refund).where(Refund.order_id == order.id)))
    session.commit()
    by_ref = {r.ref: r for r in ours}
    known = {r.provider_refund_id: r for r in ours if r.provider_refund_id is not None}
    found = []
    for made in theirs:
        if made.id in known:
            found += _settled(session, order, known[made.id], made, now)
            continue
        mine = by_ref.get(made.refund_ref or "")
        begin_write(session)
        if mine is not None:  # asked for, made, but lbs never heard back
            session.execute(
                update(Refund)
                .where(Refund.id == mine.id)
                .values(status=made.status, provider_refund_id=made.id, updated_at=now),
                execution_options={"synchronize_session": False},
            )
            session.commit()
            found.append(
                Difference(order.id, f"refund {mine.id} was made at the provider ({made.id}): recorded", True)
            )
            continue
        found.append(_outside_refund(session, order, made, now))
    theirs_ids = {made.id for made in theirs}
    for mine in ours:
        if mine.status == "succeeded" and mine.provider_refund_id not in theirs_ids:
            what = f"refund {mine.id} ({mine.provider_refund_id}) is not at the provider"
            found.append(Difference(order.id, what, False))
    return found


def _settled(
    session: Session, order: Order, mine: Refund, made: ProviderRefund, now: datetime
) -> list[Difference]:
    """A refund the provider took pending: its end, once the provider knows it. A failed one
    leaves the holder unpaid with the voucher refunded, for a person to settle."""
    if mine.status == "pending" and made.status != "pending":
        begin_write(session)
        session.execute(
            update(Refund)
            .where(Refund.id == mine.id, Refund.status == "pending")
            .values(status=made.status, updated_at=now),
            execution_options={"synchronize_session": False},
        )
        session.commit()
        if made.status == "succeeded":
            return [Difference(order.id, f"refund {mine.id} ({made.id}) was pending: made", True)]
    if made.status == "failed":
        what = f"refund {mine.id} ({made.id}) failed at the provider: the holder is owed it; settle by hand"
        return [Difference(order.id, what, False)]
    return []


def _outside_refund(session: Session, order: Order, made: ProviderRefund, now: datetime) -> Difference:
    """A refund made on the provider's side: the voucher's, if it is still unused."""
    voucher = session.execute(select(Voucher).where(Voucher.order_id == order.id)).scalar_one_or_none()
    what = f"refunded {made.amount_minor} {order.currency} at the provider ({made.id}), not through lbs"
    if voucher is None or made.amount_minor != order.amount_minor:
        session.rollback()
        return Difference(order.id, what + ": settle by hand", False)
    try:
        refund = start_voucher_refund(session, voucher, order, "provider", now)
    except Conflict as exc:
        session.rollback()
        return Difference(order.id, f"{what}, but {exc.detail}: settle by hand", False)
    refund.status, refund.provider_refund_id = made.status, made.id
    session.commit()
    return Difference(order.id, f"{what}: voucher {voucher.id} marked refunded", True)
