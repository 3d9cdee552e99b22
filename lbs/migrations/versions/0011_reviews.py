"""Verified reviews (issue 19): a review per redeemed voucher, reports of reviews and of
harassment by merchants, and each merchant's rating totals (merchant_ratings), kept by
increments in each review's transaction.

New tables only, so their CHECK constraints are created on SQLite as well.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("merchant_id", sa.BigInteger, sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("deal_id", sa.BigInteger, sa.ForeignKey("deals.id"), nullable=False),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("voucher_id", sa.BigInteger, sa.ForeignKey("vouchers.id"), nullable=False, unique=True),
        sa.Column("rating", sa.SmallInteger, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.Column("reply_text", sa.Text, nullable=True),
        _time("replied_at", nullable=True),
        sa.Column("report_count", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="reviews_rating"),
    )
    op.create_index("ix_reviews_merchant_newest", "reviews", ["merchant_id", "created_at", "id"])
    op.create_index("ix_reviews_merchant_rating", "reviews", ["merchant_id", "rating", "created_at", "id"])
    op.create_table(
        "review_reports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("review_id", sa.BigInteger, sa.ForeignKey("reviews.id"), nullable=False, index=True),
        sa.Column("reporter", sa.String(80), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        _time("created_at"),
        sa.UniqueConstraint("review_id", "reporter", name="review_reports_once"),
    )
    op.create_table(
        "harassment_reports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("merchant_id", sa.BigInteger, sa.ForeignKey("merchants.id"), nullable=False, index=True),
        sa.Column("review_id", sa.BigInteger, sa.ForeignKey("reviews.id"), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _time("created_at"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="harassment_reports_status"),
    )
    op.create_table(
        "merchant_ratings",
        sa.Column("merchant_id", sa.BigInteger, sa.ForeignKey("merchants.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("review_count", sa.Integer, nullable=False),
        sa.Column("rating_sum", sa.BigInteger, nullable=False),
        sa.Column("recommend_count", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "review_count >= 0 AND recommend_count BETWEEN 0 AND review_count "
            "AND rating_sum BETWEEN review_count AND 5 * review_count",
            name="merchant_ratings_totals",
        ),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("merchant_ratings")
    op.drop_table("harassment_reports")
    op.drop_table("review_reports")
    op.drop_index("ix_reviews_merchant_rating", "reviews")
    op.drop_index("ix_reviews_merchant_newest", "reviews")
    op.drop_table("reviews")
