"""Deals, users, per-user claim counts, vouchers and the event log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        _time("created_at"),
    )
    op.create_table(
        "deals",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "merchant_id", sa.BigInteger, sa.ForeignKey("merchants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("list_price_minor", sa.BigInteger, nullable=False),
        sa.Column("deal_price_minor", sa.BigInteger, nullable=False),
        sa.Column("quantity_total", sa.Integer),
        sa.Column("quantity_claimed", sa.Integer, nullable=False),
        sa.Column("per_user_limit", sa.Integer, nullable=False),
        _time("valid_from"),
        _time("valid_until"),
        sa.Column("windows", sa.JSON, nullable=False),
        sa.Column("redeem_within_minutes", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        _time("ended_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.CheckConstraint(
            "quantity_total IS NULL OR quantity_claimed <= quantity_total", name="deals_not_oversold"
        ),
        sa.CheckConstraint(
            "deal_price_minor >= 0 AND deal_price_minor < list_price_minor", name="deals_price"
        ),
        sa.CheckConstraint("valid_from < valid_until", name="deals_validity"),
        sa.CheckConstraint("status IN ('draft', 'published', 'paused', 'ended')", name="deals_status"),
    )
    op.create_index("ix_deals_merchant_id", "deals", ["merchant_id"])
    # has_deal searches join live deals to merchants inside a lat/lon box.
    op.create_index("ix_merchants_lat_lon", "merchants", ["lat", "lon"])
    op.create_index("ix_deals_valid_until", "deals", ["valid_until"])
    op.create_table(
        "user_deal_claims",
        sa.Column("deal_id", sa.BigInteger, sa.ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("claims", sa.Integer, nullable=False),
    )
    op.create_table(
        "vouchers",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("deal_id", sa.BigInteger, sa.ForeignKey("deals.id"), nullable=False),
        sa.Column("merchant_id", sa.BigInteger, sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("code_digest", sa.String(64), nullable=False),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _time("claimed_at"),
        _time("expires_at"),
        _time("redeemed_at", nullable=True),
        sa.UniqueConstraint("merchant_id", "code_digest", name="vouchers_code"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="vouchers_idempotency"),
    )
    op.create_index("ix_vouchers_deal_id", "vouchers", ["deal_id"])
    op.create_index("ix_vouchers_user_id", "vouchers", ["user_id"])
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("user_id", sa.BigInteger),
        sa.Column("merchant_id", sa.BigInteger),
        sa.Column("deal_id", sa.BigInteger),
        sa.Column("voucher_id", sa.BigInteger),
        sa.Column("h3_cell", sa.BigInteger),
        sa.Column("client_event_id", sa.String(64)),
        _time("occurred_at"),
        _time("received_at"),
        sa.UniqueConstraint("user_id", "client_event_id", name="events_client_id"),
        sa.CheckConstraint(
            "kind IN ('impression', 'click', 'claim', 'redemption', 'visit')", name="events_kind"
        ),
    )
    op.create_index("ix_events_user_time", "events", ["user_id", "occurred_at"])
    op.create_index("ix_events_merchant_kind_time", "events", ["merchant_id", "kind", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_merchants_lat_lon", "merchants")
    for name in ("events", "vouchers", "user_deal_claims", "deals", "users"):
        op.drop_table(name)
