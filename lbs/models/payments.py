"""Orders that pay for prepaid claims, their refunds, the provider's applied events and payouts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lbs.models.base import Base, BigId, UTCDateTime


class Order(Base):
    """One unit of a prepaid deal being paid for: holds its stock from creation until
    hold_expires_at; paid issues the voucher; failed, canceled and expired release the unit;
    refunded is a payment that arrived after the release and found no stock left."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="orders_idempotency"),
        Index("ix_orders_status_hold", "status", "hold_expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Random: the provider's metadata and idempotency keys are made of it, never of the id.
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    deal_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("deals.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("merchants.id"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    refund_policy: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    hold_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    voucher_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("vouchers.id"), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # user, expiry, late_payment, provider (made on the provider's side, found by reconcile)
    reason: Mapped[str] = mapped_column(String(16))
    # pending until the provider has it; a pending refund is retried with the same key.
    status: Mapped[str] = mapped_column(String(16), index=True)
    provider_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProviderEventSeen(Base):
    """A webhook event applied: its id is inserted once its effect is committed. A crash in
    between only lets the event be applied again, which changes nothing (every effect is a
    conditional move)."""

    __tablename__ = "provider_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SettlementPayout(Base):
    """A merchant's statement for a period and currency, marked paid by the operator."""

    __tablename__ = "settlement_payouts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "currency", "period_start", name="settlement_payouts_period"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("merchants.id"))
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    vouchers: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(120))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
