"""Transactions of the payment paths, which commit between provider calls."""

from __future__ import annotations

from sqlalchemy.orm import Session

from lbs.db import BEGIN_IMMEDIATE


def begin_write(session: Session) -> None:
    """Start the session's next transaction as a write (SQLite: BEGIN IMMEDIATE, so that it
    waits for the write lock instead of failing when a read would upgrade). After a commit
    the session's next transaction is a plain BEGIN otherwise; within one, this is a no-op."""
    if not session.in_transaction():
        session.connection(execution_options={BEGIN_IMMEDIATE: True})
