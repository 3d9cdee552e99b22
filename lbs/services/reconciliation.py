"""The books of claims, checked from the rows themselves: what an operator runs after a
fault (`lbs db check`), and what the fault tests and benchmarks assert.

- no deal is claimed past its stock (quantity_claimed <= quantity_total);
- stock taken equals units held: each deal's quantity_claimed is the number of its vouchers
  not refunded plus its orders still pending (a claim takes one unit and writes one voucher
  in one transaction; an order holds one until it is paid, when its voucher takes it over,
  or released; a refund gives it back);
- no user holds more vouchers of a deal than its per_user_limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from lbs.models import Deal, Event, Order, Voucher


@dataclass(frozen=True)
class Books:
    deals: int
    vouchers: int
    client_events: int
    oversold: list[tuple[int, int, int]] = field(default_factory=list)  # (deal, claimed, total)
    mismatched: list[tuple[int, int, int]] = field(default_factory=list)  # (deal, claimed, vouchers)
    over_limit: list[tuple[int, int, int]] = field(default_factory=list)  # (deal, user, vouchers)
    vouchers_of: dict[int, int] = field(default_factory=dict)  # deal -> units held

    @property
    def balanced(self) -> bool:
        return not (self.oversold or self.mismatched or self.over_limit)

    def problems(self) -> list[str]:
        return [
            *(f"deal {d}: {c} claimed of a stock of {t}" for d, c, t in self.oversold),
            *(f"deal {d}: {c} claimed but {v} vouchers" for d, c, v in self.mismatched),
            *(
                f"deal {d}: user {u} holds {n} vouchers, over its per-user limit"
                for d, u, n in self.over_limit
            ),
        ]


def check_books(session: Session) -> Books:
    units = union_all(
        select(Voucher.deal_id, Voucher.user_id, literal(1).label("one")).where(
            Voucher.refunded_at.is_(None)
        ),
        select(Order.deal_id, Order.user_id, literal(1).label("one")).where(Order.status == "pending"),
    ).subquery("units")
    held = select(units.c.deal_id, func.count().label("n")).group_by(units.c.deal_id).subquery("held")
    deals = session.execute(
        select(Deal.id, Deal.quantity_claimed, Deal.quantity_total, func.coalesce(held.c.n, 0))
        .outerjoin(held, held.c.deal_id == Deal.id)
        .order_by(Deal.id)
    ).all()
    per_user = (
        select(units.c.deal_id, units.c.user_id, func.count().label("n"))
        .group_by(units.c.deal_id, units.c.user_id)
        .subquery("per_user")
    )
    over = session.execute(
        select(per_user.c.deal_id, per_user.c.user_id, per_user.c.n)
        .join(Deal, Deal.id == per_user.c.deal_id)
        .where(per_user.c.n > Deal.per_user_limit)
        .order_by(per_user.c.deal_id, per_user.c.user_id)
    ).all()
    client_events = session.execute(select(func.count()).where(Event.source == "client")).scalar_one()
    return Books(
        deals=len(deals),
        vouchers=sum(int(row[3]) for row in deals),
        client_events=int(client_events),
        oversold=[(d, c, t) for d, c, t, _ in deals if t is not None and c > t],
        mismatched=[(d, c, int(v)) for d, c, _, v in deals if c != v],
        over_limit=[(int(d), int(u), int(n)) for d, u, n in over],
        vouchers_of={int(d): int(v) for d, _, _, v in deals},
    )
