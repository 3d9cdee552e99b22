"""This database's id (migration 0008), which a trained model records and a worker checks."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.models import DatabaseIdentity


def database_id(session: Session) -> str:
    """The id drawn when this database was migrated (raises if it has not been: the table,
    or its one row, is missing)."""
    return session.execute(select(DatabaseIdentity.database_id).where(DatabaseIdentity.id == 1)).scalar_one()
