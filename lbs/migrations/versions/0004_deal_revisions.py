"""Deals carry the revision of their last write, set by the database itself, so every
worker's in-memory deal book (lbs.services.deal_book) can poll for what changed.

PostgreSQL: the writing transaction's id (pg_current_xact_id). Ids are not committed in
order, so a reader polls ``revision >= horizon`` with the horizon taken as the oldest
transaction still running at its previous poll (pg_snapshot_xmin): a transaction that
commits later has an id at or above it. Nothing is locked: claims of different deals
still never wait on each other.

SQLite: one writer at a time, so a counter (the highest revision plus one) is in commit
order.

Triggers, not application code, so that every path that writes a deal (claims, edits,
bulk loads, COPY) moves it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PG_FUNCTION = """
CREATE FUNCTION deals_set_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$
"""
_PG_TRIGGER = (
    "CREATE TRIGGER deals_revision BEFORE INSERT OR UPDATE ON deals "
    "FOR EACH ROW EXECUTE FUNCTION deals_set_revision()"
)
# recursive_triggers is off (SQLite's default), so the trigger's own UPDATE does not fire it again.
_SQLITE_NEXT = "(SELECT coalesce(max(revision), 0) + 1 FROM deals)"
_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER deals_revision_insert AFTER INSERT ON deals BEGIN "
    f"UPDATE deals SET revision = {_SQLITE_NEXT} WHERE id = NEW.id; END",
    f"CREATE TRIGGER deals_revision_update AFTER UPDATE ON deals BEGIN "
    f"UPDATE deals SET revision = {_SQLITE_NEXT} WHERE id = NEW.id; END",
)


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_deals_revision", "deals", ["revision"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER deals_revision ON deals")
        op.execute("DROP FUNCTION deals_set_revision()")
    else:
        op.execute("DROP TRIGGER deals_revision_update")
        op.execute("DROP TRIGGER deals_revision_insert")
    op.drop_index("ix_deals_revision", table_name="deals")
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("revision")
