"""users.transfer_code_sha256 and transfer_code_expires_at: a one-time code that moves an
anonymous user to a new device (issue 16: reinstalling the app lost the user's vouchers).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("transfer_code_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("transfer_code_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ux_users_transfer_code", ["transfer_code_sha256"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ux_users_transfer_code")
        batch.drop_column("transfer_code_expires_at")
        batch.drop_column("transfer_code_sha256")
