"""merchants.status_by_operator: the operator's moderation, apart from the merchant's own status.

An operator who closes or deactivates a merchant sets it; while it is set, the merchant's
own API key cannot change the status (issue 16: a merchant could reopen what the operator
had closed). The operator setting the status to active again clears it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    with op.batch_alter_table("merchants") as batch:
        batch.add_column(
            sa.Column("status_by_operator", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("status_by_operator")
