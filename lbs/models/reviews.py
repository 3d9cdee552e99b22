"""Verified reviews of redeemed vouchers, their reports, harassment reports, and each
merchant's rating totals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lbs.models.base import Base, BigId, UTCDateTime

RATING_CHECK = "rating BETWEEN 1 AND 5"


class Review(Base):
    """One review per redeemed voucher (voucher_id is unique), written by its holder."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(RATING_CHECK, name="reviews_rating"),
        # The two orders GET /v1/merchants/{id}/reviews pages in: newest, and best first.
        Index("ix_reviews_merchant_newest", "merchant_id", "created_at", "id"),
        Index("ix_reviews_merchant_rating", "merchant_id", "rating", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("merchants.id"))
    deal_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("deals.id"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    voucher_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("vouchers.id"), unique=True)
    rating: Mapped[int] = mapped_column(SmallInteger)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The merchant's one public answer (POST /v1/merchant/reviews/{id}/reply).
    reply_text: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Distinct reporters so far (review_reports), for moderation.
    report_count: Mapped[int] = mapped_column(Integer, server_default="0")


class ReviewReport(Base):
    """Someone finds a review abusive: once per reporter (a user, or a keyed digest of an
    anonymous reporter's address: never the address itself)."""

    __tablename__ = "review_reports"
    __table_args__ = (UniqueConstraint("review_id", "reporter", name="review_reports_once"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    review_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("reviews.id"), index=True)
    # "user:<id>" or "addr:<HMAC-SHA256 of the address, hex>".
    reporter: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HarassmentReport(Base):
    """A user reports pressure from a merchant (messages, calls) over a review or otherwise."""

    __tablename__ = "harassment_reports"
    __table_args__ = (CheckConstraint("status IN ('open', 'closed')", name="harassment_reports_status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("merchants.id"), index=True)
    review_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("reviews.id"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MerchantRating(Base):
    """A merchant's review totals, changed by increments in each review's own transaction."""

    __tablename__ = "merchant_ratings"
    __table_args__ = (
        CheckConstraint(
            "review_count >= 0 AND recommend_count BETWEEN 0 AND review_count "
            "AND rating_sum BETWEEN review_count AND 5 * review_count",
            name="merchant_ratings_totals",
        ),
    )

    merchant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("merchants.id"), primary_key=True, autoincrement=False
    )
    review_count: Mapped[int] = mapped_column(Integer)
    rating_sum: Mapped[int] = mapped_column(BigInteger)
    # Reviews of 4 or 5 stars: what "% recommend" is estimated from.
    recommend_count: Mapped[int] = mapped_column(Integer)
