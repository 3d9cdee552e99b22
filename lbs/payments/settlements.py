"""Settlement statements: what each merchant is owed for its prepaid vouchers, by week.

A voucher is earned by its merchant when it is redeemed, or when it expires unused under a
no-refunds deal; its commission is fixed then, at the rate then, and it joins the statement
of the week it was earned in (vouchers.settlement_period). Earning is recorded at the time it
happens (never back-dated), so a week's statement no longer changes once the week is over:
the operator pays it and marks it paid (`lbs payments mark-paid`), recording what was paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbs.errors import Conflict, InvalidParameter, NotFound
from lbs.models import Deal, SettlementPayout, Voucher
from lbs.payments.periods import WEEK, period_name


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class Line:
    voucher_id: int
    deal_id: int
    deal_title: str
    redeemed: bool
    earned_at: datetime
    price_minor: int
    commission_minor: int


@dataclass
class Statement:
    period_start: datetime
    currency: str
    vouchers: int
    gross_minor: int
    commission_minor: int
    payout: SettlementPayout | None
    lines: list[Line] | None = field(default=None)

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.commission_minor

    def status(self, now: datetime) -> str:
        if self.payout is not None:
            return "paid"
        return "open" if now < self.period_start + WEEK else "due"


def _totals(session: Session, merchant_id: int, periods: list[datetime]) -> list[Statement]:
    rows = session.execute(
        select(
            Voucher.settlement_period,
            Voucher.currency,
            func.count(),
            func.sum(Voucher.price_minor),
            func.sum(Voucher.commission_minor),
        )
        .where(Voucher.merchant_id == merchant_id, Voucher.settlement_period.in_(periods))
        .group_by(Voucher.settlement_period, Voucher.currency)
    ).all()
    payouts = {
        (p.period_start, p.currency): p
        for p in session.scalars(
            select(SettlementPayout).where(
                SettlementPayout.merchant_id == merchant_id, SettlementPayout.period_start.in_(periods)
            )
        )
    }
    found = []
    for start, currency, n, gross, commission in rows:
        assert start is not None and commission is not None  # earned vouchers have both
        found.append(
            Statement(start, currency, int(n), int(gross), int(commission), payouts.get((start, currency)))
        )
    return sorted(found, key=lambda s: (-s.period_start.timestamp(), s.currency))


def statements(session: Session, merchant_id: int, periods: int, before: datetime | None) -> list[Statement]:
    """The statements of the merchant's latest ``periods`` weeks with earnings (before
    ``before``), newest first; a week's currencies each have their own."""
    query = select(Voucher.settlement_period).where(
        Voucher.merchant_id == merchant_id, Voucher.settlement_period.is_not(None)
    )
    if before is not None:
        query = query.where(Voucher.settlement_period < before)
    ordered = query.distinct().order_by(Voucher.settlement_period.desc()).limit(periods)
    starts = [s for s in session.scalars(ordered) if s is not None]
    return _totals(session, merchant_id, starts) if starts else []


def statement(session: Session, merchant_id: int, start: datetime) -> list[Statement]:
    """The week's statements (one per currency), each with its vouchers' lines."""
    found = _totals(session, merchant_id, [start])
    if not found:
        raise NotFound(f"you earned nothing in {period_name(start)}")
    rows = session.execute(
        select(Voucher, Deal.title)
        .join(Deal, Deal.id == Voucher.deal_id)
        .where(Voucher.merchant_id == merchant_id, Voucher.settlement_period == start)
        .order_by(Voucher.earned_at, Voucher.id)
    ).all()
    for each in found:
        each.lines = [
            Line(
                v.id,
                v.deal_id,
                title,
                v.redeemed_at is not None,
                v.earned_at,
                v.price_minor,
                v.commission_minor,
            )
            for v, title in rows
            if v.currency == each.currency and v.earned_at is not None and v.commission_minor is not None
        ]
    return found


def mark_paid(
    session: Session, merchant_id: int, start: datetime, currency: str, reference: str, now: datetime
) -> SettlementPayout:
    """Record that the week's statement in ``currency`` was paid out, as it stands."""
    if now < start + WEEK:
        raise Conflict(f"{period_name(start)} has not ended: its statement may still grow")
    found = [s for s in _totals(session, merchant_id, [start]) if s.currency == currency]
    if not found:
        raise NotFound(f"merchant {merchant_id} earned nothing in {currency} in {period_name(start)}")
    if not reference.strip():
        raise InvalidParameter("reference", "say how it was paid (a bank transfer's reference)")
    owed = found[0]
    payout = SettlementPayout(
        merchant_id=merchant_id, currency=currency, period_start=start, period_end=start + WEEK,
        amount_minor=owed.net_minor, vouchers=owed.vouchers, reference=reference.strip()[:120], paid_at=now,
    )  # fmt: skip
    session.add(payout)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"{period_name(start)} in {currency} is already marked paid") from None
    return payout
