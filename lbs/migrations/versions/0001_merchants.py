"""Merchants, their API keys and the merchant change-log counter.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "merchants",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("address", sa.String(300)),
        sa.Column("phone", sa.String(40)),
        sa.Column("website", sa.String(500)),
        sa.Column("price_level", sa.SmallInteger),
        sa.Column("opening_hours", sa.Text),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lat BETWEEN -90 AND 90", name="merchants_lat_range"),
        sa.CheckConstraint("lon BETWEEN -180 AND 180", name="merchants_lon_range"),
        sa.CheckConstraint("status IN ('active', 'inactive', 'closed')", name="merchants_status"),
        sa.CheckConstraint("price_level BETWEEN 1 AND 4", name="merchants_price_level"),
    )
    op.create_index("ix_merchants_revision", "merchants", ["revision"])
    if postgres:
        # Derived by the database from lat/lon, so no write path can let them drift apart.
        op.execute(
            "ALTER TABLE merchants ADD COLUMN geog geography(Point, 4326) "
            "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED"
        )
        op.execute("CREATE INDEX ix_merchants_geog ON merchants USING gist (geog)")

    op.create_table(
        "merchant_api_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "merchant_id", sa.BigInteger, sa.ForeignKey("merchants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_merchant_api_keys_merchant_id", "merchant_api_keys", ["merchant_id"])

    counters = op.create_table(
        "revision_counters",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(counters, [{"name": "merchants", "value": 0}])


def downgrade() -> None:
    op.drop_table("revision_counters")
    op.drop_table("merchant_api_keys")
    op.drop_table("merchants")
