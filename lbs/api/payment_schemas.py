"""The shapes of orders, refunds, webhook receipts and settlement statements (docs/payments.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lbs.api.responses import Out

OrderStatus = Literal["pending", "paid", "failed", "canceled", "expired", "refunded"]


class PaymentOut(Out):
    provider: str
    intent_id: str | None = Field(description="the provider's payment (a Stripe PaymentIntent id)")
    client_secret: str | None = Field(
        description="while pending: what the paying client confirms the payment with "
        "(Stripe.js confirmCardPayment); null once the order is no longer pending"
    )


class OrderOut(Out):
    id: int
    deal_id: int
    merchant_id: int
    status: OrderStatus = Field(
        description="pending: holding a unit until hold_expires_at, waiting for the payment; paid: "
        "the voucher is issued; failed, canceled, expired: released, nothing charged; refunded: paid "
        "after the hold was released and no unit was left, so the money was returned"
    )
    amount_minor: int
    currency: str
    refund_policy: Literal["anytime", "none"]
    hold_expires_at: str
    created_at: str
    paid_at: str | None
    voucher_id: int | None = Field(description="once paid: GET /v1/me/vouchers/{voucher_id}")
    payment: PaymentOut


class OrderListOut(Out):
    items: list[OrderOut]
    next_cursor: str | None


class RefundOut(Out):
    id: int
    order_id: int
    voucher_id: int | None
    status: Literal["pending", "succeeded", "failed"] = Field(
        description="pending until the provider has made it (it is sent again until it has)"
    )
    reason: Literal["user", "expiry", "late_payment", "provider"]
    amount_minor: int
    currency: str
    created_at: str


class WebhookOut(Out):
    received: bool
    duplicate: bool = Field(description="the event was applied before: nothing was done again")


class StatementLineOut(Out):
    voucher_id: int
    deal_id: int
    deal_title: str
    kind: Literal["redeemed", "expired"] = Field(
        description="redeemed at the counter, or expired unused under a no-refunds deal"
    )
    earned_at: str
    price_minor: int
    commission_minor: int
    net_minor: int


class StatementOut(Out):
    period: str = Field(description="the ISO week, UTC: 2026-W49")
    period_start: str
    period_end: str
    currency: str
    status: Literal["open", "due", "paid"] = Field(
        description="open: the period is running; due: ended, to be paid; paid: paid out"
    )
    vouchers: int
    gross_minor: int
    commission_minor: int
    net_minor: int = Field(description="what the merchant is owed: gross less commission")
    paid_at: str | None
    reference: str | None
    lines: list[StatementLineOut] | None = Field(
        None, description="each voucher's line: only on GET /v1/merchant/settlements/{period}"
    )


class StatementListOut(Out):
    items: list[StatementOut]
    next_cursor: str | None
