"""Merchant insights (issue 19): where an event was seen (events.surface), the daily rollup of
the funnel per bucket (insight_days) and how far it has read the event log (insight_progress).

SQLite gets events.surface by ALTER TABLE ADD COLUMN, without its CHECK constraint (a table
rebuild of the event log is not worth it; the writers only write SURFACES); PostgreSQL gets
the constraint as well.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SURFACES = ("nearby", "map", "deal_page", "merchant_page")


def upgrade() -> None:
    op.add_column("events", sa.Column("surface", sa.String(16), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint("events_surface", "events", f"surface IN {SURFACES!r}")
    op.create_table(
        "insight_days",
        sa.Column("merchant_id", sa.BigInteger, nullable=False),
        sa.Column("dim", sa.String(8), nullable=False),
        sa.Column("deal_id", sa.BigInteger, nullable=False),
        sa.Column("local_day", sa.Date, nullable=False),
        sa.Column("key", sa.String(16), nullable=False),
        sa.Column("users", sa.Integer, nullable=False),
        sa.Column("user_ids", sa.LargeBinary, nullable=False),
        sa.Column("impressions", sa.Integer, nullable=False),
        sa.Column("clicks", sa.Integer, nullable=False),
        sa.Column("claims", sa.Integer, nullable=False),
        sa.Column("redemptions", sa.Integer, nullable=False),
        sa.Column("revenue_minor", sa.BigInteger, nullable=False),
        sa.Column("discount_minor", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "dim", "deal_id", "local_day", "key"),
    )
    progress = op.create_table(
        "insight_progress",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rolled_up_to", sa.BigInteger, nullable=False),
        sa.Column("seen_max_id", sa.BigInteger, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.bulk_insert(progress, [{"id": 1, "rolled_up_to": 0, "seen_max_id": 0, "seen_at": None}])


def downgrade() -> None:
    op.drop_table("insight_progress")
    op.drop_table("insight_days")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("events_surface", "events", type_="check")
    op.drop_column("events", "surface")
