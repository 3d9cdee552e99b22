"""database_identity: one row naming this database (a random UUID drawn when it is
migrated), so that a trained model records the database it learnt from and a worker
refuses a model of another database (issue 17: with LBS_DATABASE_URL pointed at a new
database, the old database's model ranked its merchants by the old ids). A database
migrated before this revision gets its id when it is upgraded past it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    identity = op.create_table(
        "database_identity",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("database_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_database_identity_one_row"),
    )
    op.bulk_insert(identity, [{"id": 1, "database_id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("database_identity")
