"""merchants.tags: words a merchant is found by besides its name and category (issue 17:
`q=pizza` should find every pizzeria, not only those named so), from OpenStreetMap's
`cuisine`, an import file's `tags` column or the API; a JSON list of strings, null for none.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merchants") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("tags")
