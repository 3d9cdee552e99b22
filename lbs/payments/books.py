"""The books: every minor unit paid in is accounted for, per currency.

    paid in = refunded + owed to merchants + commission + held for unused vouchers

paid in: orders the provider took money for (paid, or refunded for a late payment);
refunded: refunds decided (pending ones included: the money is no longer ours to keep);
owed to merchants: earned vouchers' price less commission (of which paid out: payouts);
commission: the platform's share of earned vouchers; held: prepaid vouchers neither earned
nor refunded. `lbs payments books` prints them and exits non-zero when they do not balance or
a row breaks a rule the sums rely on (a paid order without exactly one voucher, a voucher
both redeemed and refunded, a voucher's price that is not its order's amount).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from lbs.models import Order, Refund, SettlementPayout, Voucher


@dataclass
class Books:
    currency: str
    paid_in: int = 0
    refunded: int = 0
    refunds_pending: int = 0
    owed_to_merchants: int = 0
    paid_out: int = 0
    commission: int = 0
    held: int = 0

    @property
    def accounted(self) -> int:
        return self.refunded + self.owed_to_merchants + self.commission + self.held

    @property
    def balanced(self) -> bool:
        return self.paid_in == self.accounted


@dataclass
class Check:
    books: list[Books]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(b.balanced for b in self.books)


def _sums(session: Session, query: object) -> dict[str, int]:
    return {currency: int(total or 0) for currency, total in session.execute(query)}  # type: ignore[call-overload]


def check_books(session: Session) -> Check:
    paid_in = _sums(
        session,
        select(Order.currency, func.sum(Order.amount_minor))
        .where(Order.status.in_(("paid", "refunded")))
        .group_by(Order.currency),
    )
    refunded = _sums(
        session, select(Refund.currency, func.sum(Refund.amount_minor)).group_by(Refund.currency)
    )
    pending = _sums(
        session,
        select(Refund.currency, func.sum(Refund.amount_minor))
        .where(Refund.status != "succeeded")
        .group_by(Refund.currency),
    )
    prepaid = Voucher.order_id.is_not(None)
    earned = and_(prepaid, Voucher.earned_at.is_not(None))
    gross = _sums(
        session,
        select(Voucher.currency, func.sum(Voucher.price_minor)).where(earned).group_by(Voucher.currency),
    )
    commission = _sums(
        session,
        select(Voucher.currency, func.sum(Voucher.commission_minor)).where(earned).group_by(Voucher.currency),
    )
    held = _sums(
        session,
        select(Voucher.currency, func.sum(Voucher.price_minor))
        .where(prepaid, Voucher.earned_at.is_(None), Voucher.refunded_at.is_(None))
        .group_by(Voucher.currency),
    )
    paid_out = _sums(
        session,
        select(SettlementPayout.currency, func.sum(SettlementPayout.amount_minor)).group_by(
            SettlementPayout.currency
        ),
    )
    currencies = sorted(set(paid_in) | set(refunded) | set(gross) | set(held) | set(paid_out))
    books = [
        Books(
            c,
            paid_in.get(c, 0),
            refunded.get(c, 0),
            pending.get(c, 0),
            gross.get(c, 0) - commission.get(c, 0),
            paid_out.get(c, 0),
            commission.get(c, 0),
            held.get(c, 0),
        )
        for c in currencies
    ]
    return Check(books, _row_problems(session))


def _row_problems(session: Session) -> list[str]:
    problems = []
    vouchers_of_paid = session.execute(
        select(Order.id, func.count(Voucher.id))
        .outerjoin(Voucher, Voucher.order_id == Order.id)
        .where(Order.status == "paid")
        .group_by(Order.id)
        .having(func.count(Voucher.id) != 1)
    ).all()
    problems += [f"order {o}: paid, with {n} vouchers (expected 1)" for o, n in vouchers_of_paid]
    late = session.execute(
        select(Order.id, func.count(Refund.id))
        .outerjoin(Refund, and_(Refund.order_id == Order.id, Refund.voucher_id.is_(None)))
        .where(Order.status == "refunded")
        .group_by(Order.id)
        .having(func.count(Refund.id) != 1)
    ).all()
    problems += [f"order {o}: paid late and refunded, with {n} refunds (expected 1)" for o, n in late]
    both = session.scalars(
        select(Voucher.id).where(Voucher.redeemed_at.is_not(None), Voucher.refunded_at.is_not(None))
    ).all()
    problems += [f"voucher {v}: both redeemed and refunded" for v in both]
    priced = session.execute(
        select(Voucher.id, Voucher.price_minor, Order.amount_minor)
        .join(Order, Order.id == Voucher.order_id)
        .where(Voucher.price_minor != Order.amount_minor)
    ).all()
    problems += [f"voucher {v}: price {p} but its order took {a}" for v, p, a in priced]
    unrefunded = session.scalars(
        select(Voucher.id)
        .outerjoin(Refund, Refund.voucher_id == Voucher.id)
        .where(Voucher.refunded_at.is_not(None), Voucher.order_id.is_not(None), Refund.id.is_(None))
    ).all()
    problems += [f"voucher {v}: marked refunded without a refund" for v in unrefunded]
    return problems
