"""The merchant change log: a counter bumped inside every merchant write.

Updating the counter row takes its row lock (PostgreSQL) or the database write lock
(SQLite) until commit, so revision numbers become visible in commit order and a reader
that has seen revision r has seen every write numbered r or lower. Workers poll
``revision > last_seen`` to keep their in-process index current (services.nearby).
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lbs.models import Merchant, RevisionCounter

MERCHANTS = "merchants"
CHANGED_FLAG = "lbs.merchants_changed"


def next_revision(session: Session) -> int:
    """Reserve the next merchant revision; call it first in the write transaction."""
    value = session.execute(
        update(RevisionCounter)
        .where(RevisionCounter.name == MERCHANTS)
        .values(value=RevisionCounter.value + 1)
        .returning(RevisionCounter.value)
    ).scalar_one()
    session.info[CHANGED_FLAG] = True
    return int(value)


def latest_revision(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.max(Merchant.revision), 0))).scalar_one())
