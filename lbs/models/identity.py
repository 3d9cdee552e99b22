"""The database's own identity (migration 0008): what a trained model is bound to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lbs.models.base import Base, UTCDateTime


class DatabaseIdentity(Base):
    __tablename__ = "database_identity"
    # One row: a second would make "this database's id" ambiguous.
    __table_args__ = (CheckConstraint("id = 1", name="ck_database_identity_one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # A random UUID drawn when the database was migrated; a copy of the database (a
    # restored backup, a replica) keeps it, and so keeps its models.
    database_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
