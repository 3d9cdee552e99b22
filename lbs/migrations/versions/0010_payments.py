"""Prepaid claims (issue 18): deals say how they are paid and refunded; orders hold a unit of
stock while the payment provider takes the money; vouchers of paid orders are refunded or
earned by their merchant; refunds, the provider's events (each applied once) and the payouts
that settle merchants' statements.

Deals made before this revision keep the promise they were published with: paid at the
counter. SQLite gets the new columns by ALTER TABLE ADD COLUMN (no table rebuild, which
would drop the deals' revision triggers) and so without their CHECK constraints, which the
service enforces there; PostgreSQL gets them as well.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")

_CHECKS = {
    "deals": [
        ("deals_payment", "payment IN ('at_counter', 'prepaid')"),
        ("deals_refund_policy", "refund_policy IN ('anytime', 'none')"),
    ],
    "vouchers": [
        # A voucher is never both redeemed and refunded (the conditional updates see to it first).
        ("vouchers_redeemed_or_refunded", "redeemed_at IS NULL OR refunded_at IS NULL"),
        ("vouchers_commission", "commission_minor IS NULL OR commission_minor BETWEEN 0 AND price_minor"),
    ],
}


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("deals", sa.Column("payment", sa.String(16), nullable=False, server_default="at_counter"))
    op.add_column(
        "deals", sa.Column("refund_policy", sa.String(16), nullable=False, server_default="anytime")
    )
    op.create_table(
        "orders",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("deal_id", sa.BigInteger, sa.ForeignKey("deals.id"), nullable=False, index=True),
        sa.Column("merchant_id", sa.BigInteger, sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("refund_policy", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("intent_id", sa.String(255), unique=True),
        _time("hold_expires_at"),
        _time("paid_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="orders_idempotency"),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'failed', 'canceled', 'expired', 'refunded')", name="orders_status"
        ),
        sa.CheckConstraint("amount_minor > 0", name="orders_amount"),
    )
    op.create_index("ix_orders_status_hold", "orders", ["status", "hold_expires_at"])
    # SQLite: a rebuild of vouchers, which has no triggers, for the foreign key to orders.
    with op.batch_alter_table("vouchers") as batch:
        batch.add_column(
            sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id", name="vouchers_order_id_fkey"))
        )
        batch.add_column(_time("refunded_at", nullable=True))
        # When the merchant earned the voucher's price (redeemed, or expired unused without
        # refunds), the platform's commission on it, and the settlement period (a UTC week)
        # it was earned in: what settlement statements are made of.
        batch.add_column(_time("earned_at", nullable=True))
        batch.add_column(sa.Column("commission_minor", sa.BigInteger, nullable=True))
        batch.add_column(_time("settlement_period", nullable=True))
    op.create_index("ix_vouchers_order_id", "vouchers", ["order_id"], unique=True)
    op.create_index("ix_vouchers_settlement", "vouchers", ["merchant_id", "settlement_period"])
    op.create_table(
        "refunds",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), nullable=False, index=True),
        # None: a payment that came after its order was released and found no stock.
        sa.Column("voucher_id", sa.BigInteger, sa.ForeignKey("vouchers.id"), nullable=True, unique=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_refund_id", sa.String(255), unique=True),
        _time("created_at"),
        _time("updated_at"),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="refunds_status"),
        sa.CheckConstraint("reason IN ('user', 'expiry', 'late_payment', 'provider')", name="refunds_reason"),
        sa.CheckConstraint("amount_minor > 0", name="refunds_amount"),
    )
    op.create_index("ix_refunds_status", "refunds", ["status"])
    op.create_table(
        "provider_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        _time("received_at"),
    )
    op.create_table(
        "settlement_payouts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("merchant_id", sa.BigInteger, sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _time("period_start"),
        _time("period_end"),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("vouchers", sa.Integer, nullable=False),
        sa.Column("reference", sa.String(120), nullable=False),
        _time("paid_at"),
        sa.UniqueConstraint("merchant_id", "currency", "period_start", name="settlement_payouts_period"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table, checks in _CHECKS.items():
            for name, condition in checks:
                op.create_check_constraint(name, table, condition)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, checks in _CHECKS.items():
            for name, _ in checks:
                op.drop_constraint(name, table, type_="check")
    op.drop_table("settlement_payouts")
    op.drop_table("provider_events")
    op.drop_index("ix_refunds_status", "refunds")
    op.drop_table("refunds")
    op.drop_index("ix_vouchers_settlement", "vouchers")
    op.drop_index("ix_vouchers_order_id", "vouchers")
    with op.batch_alter_table("vouchers") as batch:  # SQLite: a rebuild (no triggers on vouchers)
        for column in ("settlement_period", "commission_minor", "earned_at", "refunded_at", "order_id"):
            batch.drop_column(column)
    op.drop_index("ix_orders_status_hold", "orders")
    op.drop_table("orders")
    op.drop_column("deals", "refund_policy")
    op.drop_column("deals", "payment")
