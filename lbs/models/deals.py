"""Deals, the per-user claim counts that enforce limits, and the vouchers claims produce."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lbs.models.base import Base, BigId, UTCDateTime


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        # The last line of defence against overselling: the claim's conditional update
        # should never get here, and if it ever did the database refuses.
        CheckConstraint(
            "quantity_total IS NULL OR quantity_claimed <= quantity_total", name="deals_not_oversold"
        ),
        CheckConstraint("deal_price_minor >= 0 AND deal_price_minor < list_price_minor", name="deals_price"),
        CheckConstraint("valid_from < valid_until", name="deals_validity"),
        CheckConstraint("status IN ('draft', 'published', 'paused', 'ended')", name="deals_status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    list_price_minor: Mapped[int] = mapped_column(BigInteger)
    deal_price_minor: Mapped[int] = mapped_column(BigInteger)
    quantity_total: Mapped[int | None] = mapped_column(Integer)
    quantity_claimed: Mapped[int] = mapped_column(Integer, default=0)
    per_user_limit: Mapped[int] = mapped_column(Integer, default=1)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # [{"days": ["mon", ...], "start": "18:00", "end": "23:00"}] in the merchant's local time.
    windows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    redeem_within_minutes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    # prepaid: claimed by paying deal_price_minor online (lbs.payments); at_counter: a free
    # claim, the price paid at the counter (deals before migration 0010, free deals).
    payment: Mapped[str] = mapped_column(String(16), server_default="at_counter")
    # Prepaid deals: "anytime" refunds an unused voucher on request and on expiry; "none" never.
    refund_policy: Mapped[str] = mapped_column(String(16), server_default="anytime")
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set by the database on every write (migration 0004): what deal books poll for.
    revision: Mapped[int] = mapped_column(
        BigInteger, server_default="0", server_onupdate=FetchedValue(), index=True
    )


class UserDealClaims(Base):
    """How many vouchers a user holds for a deal; the per-user limit is a conditional upsert here."""

    __tablename__ = "user_deal_claims"

    deal_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    claims: Mapped[int] = mapped_column(Integer)


class Voucher(Base):
    __tablename__ = "vouchers"
    __table_args__ = (
        UniqueConstraint("merchant_id", "code_digest", name="vouchers_code"),
        UniqueConstraint("user_id", "idempotency_key", name="vouchers_idempotency"),
        Index("ix_vouchers_settlement", "merchant_id", "settlement_period"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No cascade: a voucher is a promise to its holder, so a deal with vouchers cannot be
    # deleted (merchants end deals; merchants themselves are closed, not deleted).
    deal_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("deals.id"), index=True)
    # The deal's merchant, copied so that redemption looks a code up by (merchant, digest).
    merchant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("merchants.id"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # The code is HMAC(secret key, nonce): not stored; code_digest (keyed) finds it.
    nonce: Mapped[str] = mapped_column(String(32))
    code_digest: Mapped[str] = mapped_column(String(64))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Prepaid vouchers (migration 0010): the order that paid, the refund, and when and for
    # what commission the merchant earned the price (redeemed, or expired without refunds).
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"), unique=True, index=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    earned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    commission_minor: Mapped[int | None] = mapped_column(BigInteger)
    settlement_period: Mapped[datetime | None] = mapped_column(UTCDateTime)
