"""A run of prepaid claims driven step by step through lbs.payments on a clock of its own,
beside a model of what each step must have done (for test_books_property.py): after every
step lbs's books, the stock and the model agree; at the end, localstripe's money too."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask_openapi3 import OpenAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs import errors
from lbs.api.context import Runtime
from lbs.models import Order, Voucher
from lbs.payments.books import check_books
from lbs.payments.expiry import expire
from lbs.payments.orders import place_order, sync_order
from lbs.payments.periods import WEEK, period_start
from lbs.payments.provider import CardDeclined, PaymentProvider, ProviderError
from lbs.payments.reconcile import reconcile
from lbs.payments.refunds import refund_voucher
from lbs.payments.settlements import mark_paid
from lbs.services import reconciliation
from lbs.services.redemption import commission, redeem_voucher
from lbs.services.voucher_codes import code_for
from tests.deals_factory import create_deal, iso, make_merchant, make_user

# Two deals of one merchant: another currency, another refund policy, a price whose
# commission rounds (995 * 10 % = 99.5 -> 100).
DEALS = [
    {"currency": "EUR", "deal_price_minor": 900, "quantity_total": 3, "per_user_limit": 2,
     "refund_policy": "anytime", "redeem_within_minutes": 90},
    {"currency": "USD", "deal_price_minor": 995, "quantity_total": 2, "per_user_limit": 1,
     "refund_policy": "none", "redeem_within_minutes": 90},
]  # fmt: skip
USERS = 3
REFUSED = {"redeemed": errors.VoucherAlreadyRedeemed, "refunded": errors.VoucherRefunded}
NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DealM:
    id: int
    currency: str
    price: int
    total: int
    per_user: int
    refunds: bool
    minutes: int


@dataclass
class OrderM:
    id: int
    deal: DealM
    user: int
    intent_id: str
    hold_until: datetime
    status: str = "pending"  # pending, paid, expired, failed
    intent: str = "open"  # at the provider: open, succeeded, canceled
    # Its voucher: "" (none yet), held, redeemed, refunded, earned (expired under no refunds).
    voucher: str = ""
    voucher_id: int | None = None
    code: str = ""
    expires_at: datetime = NEVER
    commission: int = 0
    period: datetime | None = None


def pick(orders: list[OrderM], i: int) -> OrderM | None:
    return orders[i % len(orders)] if orders else None


@dataclass
class Run:
    rt: Runtime
    merchant_id: int
    deals: list[DealM]
    users: list[int]
    now: datetime
    orders: list[OrderM] = field(default_factory=list)
    payouts: dict[tuple[datetime, str], int] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)  # what happened, for the statistics

    @property
    def provider(self) -> PaymentProvider:
        assert self.rt.payments is not None
        return self.rt.payments

    def session(self) -> Session:
        return self.rt.sessions()

    def pending(self) -> list[OrderM]:
        return [o for o in self.orders if o.status == "pending"]

    def vouchers(self, *states: str) -> list[OrderM]:
        return [o for o in self.orders if o.voucher in (states or ("held", "redeemed", "refunded", "earned"))]

    def units(self, deal: DealM, user: int | None = None) -> int:
        """The stock held: pending orders and vouchers not refunded."""
        return sum(
            o.status == "pending" or o.voucher in ("held", "redeemed", "earned")
            for o in self.orders
            if o.deal == deal and user in (None, o.user)
        )

    def steps(self) -> list[str]:
        """The steps that have something to act on now; the usual ones twice, to be drawn more."""
        return [
            "order", "order", "advance", "advance", "expire", "expire",
            *(["pay", "pay", "decline"] if self.pending() else []),
            *(["pay_late", "poll"] if self.orders else []),
            *(["redeem", "refund", "refund"] if self.vouchers() else []),
            *(["mark_paid", "mark_paid", "advance"] if self.vouchers("redeemed", "earned") else []),
        ]  # fmt: skip

    def _synced(self, order: OrderM, *, failed: bool = False) -> None:
        """What sync_order must have done, in the model (and the voucher it issued, read)."""
        if order.status != "pending":
            return
        if order.intent == "succeeded":
            order.status = "paid"
            if self.now >= order.hold_until:
                self.seen["paid after its hold ran out"] += 1
            with self.session() as s:
                row = s.execute(select(Voucher).where(Voucher.order_id == order.id)).scalar_one()
            order.expires_at = self.now + timedelta(minutes=order.deal.minutes)
            assert row.expires_at == order.expires_at
            order.voucher, order.voucher_id = "held", row.id
            order.code = code_for(self.rt.secret_key, row.nonce)
        elif failed or self.now >= order.hold_until:
            order.intent, order.status = "canceled", "failed" if failed else "expired"

    def _sync(self, order: OrderM, *, failed: bool = False) -> None:
        with self.session() as s:
            row = s.get(Order, order.id)
            assert row is not None
            sync_order(s, self.provider, self.rt.secret_key, row, self.now, failed=failed)
        self._synced(order, failed=failed)

    def _earn(self, order: OrderM, how: str) -> None:
        order.voucher, order.period = how, period_start(self.now)
        order.commission = commission(order.deal.price, self.rt.settings.commission_bps)

    def order(self, i: int) -> None:
        deal, user = self.deals[i // USERS % len(self.deals)], self.users[i % USERS]
        sold_out, at_limit = self.units(deal) >= deal.total, self.units(deal, user) >= deal.per_user
        hold = timedelta(seconds=self.rt.settings.payment_hold_s)
        with self.session() as s:
            try:
                placed = place_order(s, self.provider, user, deal.id, uuid.uuid4().hex, self.now, hold)
            except errors.DealNotClaimable as refused:
                assert sold_out and refused.extensions["reason"] == "sold_out"
                self.seen["sold out"] += 1
                return
            except errors.ClaimLimitReached:
                assert at_limit and not sold_out
                self.seen["at the limit per user"] += 1
                return
            assert not (sold_out or at_limit) and placed.order.intent_id is not None
            self.orders.append(OrderM(placed.order.id, deal, user, placed.order.intent_id, self.now + hold))

    def pay(self, i: int) -> None:
        """The API's test payment, then its poll; only of a pending order."""
        if (order := pick(self.pending(), i)) is None:
            return
        if order.intent == "open":
            self.provider.pay_with_test_card(order.intent_id, "visa")
            order.intent = "succeeded"
        self._sync(order)

    def pay_late(self, i: int) -> None:
        """The client pays (after its hold ran out, perhaps); lbs hears nothing of it yet."""
        if (order := pick(self.orders, i)) is None:
            return
        try:
            self.provider.pay_with_test_card(order.intent_id, "visa")
        except ProviderError:
            assert order.intent != "open"  # cancelled when its hold was released, or paid
            self.seen["paid at the provider: refused"] += 1
            return
        assert order.intent == "open"
        order.intent = "succeeded"

    def decline(self, i: int) -> None:
        if (order := pick(self.pending(), i)) is None or order.intent != "open":
            return
        try:
            self.provider.pay_with_test_card(order.intent_id, "declined")
            raise AssertionError("the declined card paid")
        except CardDeclined:
            self._sync(order, failed=True)

    def poll(self, i: int) -> None:
        if (order := pick(self.orders, i)) is not None:
            self._sync(order)

    def refund(self, i: int) -> None:
        if (order := pick(self.vouchers(), i)) is None:
            return
        with self.session() as s:
            try:
                made = refund_voucher(s, self.provider, order.user, order.voucher_id or 0, self.now)
            except errors.Conflict as refused:
                # A no-refunds deal's voucher is refused as such, whatever its state.
                why = REFUSED[order.voucher] if order.deal.refunds else errors.NotRefundable
                assert type(refused) is why
                self.seen[f"refund refused: {type(refused).__name__}"] += 1
                return
            assert order.voucher == "held" and order.deal.refunds
            assert (made.status, made.amount_minor) == ("succeeded", order.deal.price)
        order.voucher = "refunded"

    def redeem(self, i: int) -> None:
        if (order := pick(self.vouchers(), i)) is None:
            return
        with self.session() as s:
            try:
                bps = self.rt.settings.commission_bps
                redeem_voucher(s, self.rt.secret_key, self.merchant_id, order.code, self.now, bps)
                s.commit()
            except errors.Conflict as refused:
                assert type(refused) is REFUSED.get(order.voucher, errors.VoucherExpired)
                assert order.voucher != "held" or self.now >= order.expires_at
                self.seen[f"redemption refused: {type(refused).__name__}"] += 1
                return
        assert order.voucher == "held" and self.now < order.expires_at
        self._earn(order, "redeemed")

    def advance(self, i: int) -> None:
        """Past a hold (10 min), past a voucher's 90 minutes, 4 days, to the next settlement week."""
        next_week = period_start(self.now) + WEEK - self.now
        by = [timedelta(minutes=11), timedelta(hours=2), timedelta(days=4), next_week]
        self.now += by[i % len(by)]

    def expire(self, i: int) -> None:
        due = [o for o in self.pending() if o.hold_until <= self.now]
        unused = [o for o in self.vouchers("held") if o.expires_at <= self.now]
        with self.session() as s:
            done = expire(s, self.provider, self.rt.secret_key, self.now, self.rt.settings.commission_bps)
        for order in due:
            self._synced(order)
        for order in unused:
            if order.deal.refunds:
                order.voucher = "refunded"
            else:
                self._earn(order, "earned")
        paid, refunds = sum(o.status == "paid" for o in due), sum(o.deal.refunds for o in unused)
        assert (done.holds_released, done.paid_meanwhile) == (len(due) - paid, paid), done
        assert (done.vouchers_refunded, done.vouchers_earned) == (refunds, len(unused) - refunds), done
        assert (done.refunds_sent, done.provider_errors) == (0, 0), done

    def mark_paid(self, i: int) -> None:
        earned = self.vouchers("redeemed", "earned")
        weeks = sorted({(o.period or self.now, o.deal.currency) for o in earned})
        if not weeks:
            return
        start, currency = weeks[i % len(weeks)]
        with self.session() as s:
            try:
                payout = mark_paid(s, self.merchant_id, start, currency, f"transfer {i}", self.now)
                s.commit()
            except errors.Conflict:
                assert (start, currency) in self.payouts or self.now < start + WEEK
                self.seen["mark-paid refused"] += 1
                return
        assert (start, currency) not in self.payouts and self.now >= start + WEEK
        week = [o for o in earned if (o.period, o.deal.currency) == (start, currency)]
        owed = sum(o.deal.price - o.commission for o in week)
        assert (payout.amount_minor, payout.vouchers) == (owed, len(week))
        self.payouts[(start, currency)] = payout.amount_minor

    def expected_books(self) -> dict[str, tuple[int, ...]]:
        """Per currency: paid in, refunded, pending, owed to merchants, paid out, commission, held."""
        books: dict[str, tuple[int, ...]] = {}
        for currency in sorted({o.deal.currency for o in self.vouchers()}):
            mine = [o for o in self.vouchers() if o.deal.currency == currency]
            earned = [o for o in mine if o.voucher in ("redeemed", "earned")]
            cut = sum(o.commission for o in earned)
            books[currency] = (
                sum(o.deal.price for o in mine),
                sum(o.deal.price for o in mine if o.voucher == "refunded"),
                0,
                sum(o.deal.price for o in earned) - cut,
                sum(amount for (_, c), amount in self.payouts.items() if c == currency),
                cut,
                sum(o.deal.price for o in mine if o.voucher == "held"),
            )
        return books

    def check(self) -> None:
        with self.session() as s:
            books = check_books(s)
            assert books.ok, (books.problems, books.books)
            got = {b.currency: (b.paid_in, b.refunded, b.refunds_pending, b.owed_to_merchants, b.paid_out,
                                b.commission, b.held) for b in books.books}  # fmt: skip
            assert got == self.expected_books()
            stock = reconciliation.check_books(s)
            assert stock.balanced, stock.problems()
            assert stock.vouchers_of == {d.id: self.units(d) for d in self.deals}
            rows = s.execute(
                select(Order.id, Order.status, Voucher.id, Voucher.redeemed_at, Voucher.refunded_at,
                       Voucher.earned_at).outerjoin(Voucher, Voucher.order_id == Order.id)
            ).all()  # fmt: skip
        states = {o: (st, v, r is not None, f is not None, e is not None) for o, st, v, r, f, e in rows}
        assert states == {
            o.id: (o.status, o.voucher_id, o.voucher == "redeemed", o.voucher == "refunded", bool(o.period))
            for o in self.orders
        }

    def check_provider(self) -> None:
        """Reconcile finds exactly the payments lbs was not told of; then every intent's money
        at localstripe is what lbs holds or earned for its order."""
        unheard = [o for o in self.pending() if o.intent == "succeeded"]
        with self.session() as s:
            found = reconcile(s, self.provider, self.rt.secret_key, self.now, self.now - timedelta(days=365))
        assert sorted(d.order_id for d in found) == [o.id for o in unheard], found
        assert all(d.repaired for d in found), found
        if unheard:
            self.seen["lost webhook repaired by reconcile"] += 1
        for order in unheard:
            self._synced(order)
        self.check()
        for order in self.orders:
            intent = self.provider.get_intent(order.intent_id)
            assert intent.status == {"open": "requires_payment"}.get(order.intent, order.intent)
            net = (intent.amount_minor if intent.status == "succeeded" else 0) - intent.amount_refunded_minor
            kept = order.voucher in ("held", "redeemed", "earned")
            assert net == (order.deal.price if kept else 0), (order, intent)


def start_run(app: OpenAPI) -> Run:
    """The merchant, its DEALS and the USERS, made through the API; the clock at now."""
    client = app.test_client()
    merchant_id, key = make_merchant(client)
    start = datetime.now(UTC).replace(microsecond=0)
    deals = []
    for spec in DEALS:
        made = create_deal(client, key, publish=True, payment="prepaid",
                           valid_until=iso(start + timedelta(days=300)), **spec)  # fmt: skip
        deals.append(DealM(made["id"], made["currency"], made["deal_price_minor"], made["quantity_total"],
                           made["per_user_limit"], made["refund_policy"] == "anytime",
                           made["redeem_within_minutes"]))  # fmt: skip
    return Run(app.extensions["lbs"], merchant_id, deals, [make_user(client)[0] for _ in range(USERS)], start)
