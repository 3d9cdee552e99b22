"""Merchants and users keep what they were imported from (an OpenStreetMap element, a
Foursquare venue or user), so a re-import updates instead of duplicating.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merchants") as batch:
        batch.add_column(sa.Column("source_ref", sa.String(64), nullable=True))
    op.create_index("ux_merchants_source_ref", "merchants", ["source_ref"], unique=True)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source_ref", sa.String(64), nullable=True))
    op.create_index("ux_users_source_ref", "users", ["source_ref"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_users_source_ref", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("source_ref")
    op.drop_index("ux_merchants_source_ref", table_name="merchants")
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("source_ref")
