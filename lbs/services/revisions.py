"""The change logs workers poll: merchants (a counter bumped inside every merchant write)
and deals (a revision the database sets on every deal write, migration 0004).

Updating the counter row takes its row lock (PostgreSQL) or the database write lock
(SQLite) until commit, so revision numbers become visible in commit order and a reader
that has seen revision r has seen every write numbered r or lower. Workers poll
``revision > last_seen`` to keep their in-process index current (services.nearby).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, select, text, update
from sqlalchemy.orm import Session

from lbs.models import Deal, Merchant, RevisionCounter

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


DealRows = Sequence[Any]  # rows of _DEAL_COLUMNS
# A deal as the deal book holds it: its columns and where its merchant is.
_DEAL_COLUMNS = (
    Deal.id,
    Deal.merchant_id,
    Deal.title,
    Deal.kind,
    Deal.currency,
    Deal.list_price_minor,
    Deal.deal_price_minor,
    Deal.quantity_total,
    Deal.quantity_claimed,
    Deal.valid_from,
    Deal.valid_until,
    # As stored: a handful of patterns repeat over many deals, parsed once each.
    cast(Deal.windows, Text).label("windows"),
    Deal.status,
    Deal.payment,
    Deal.refund_policy,
    Deal.ended_at,
    Deal.revision,
    Merchant.timezone,
    Merchant.lat,
    Merchant.lon,
    Merchant.category,
    Merchant.status.label("merchant_status"),
)


_DEALS = select(*_DEAL_COLUMNS).join(Merchant, Merchant.id == Deal.merchant_id)


_PG_XMIN = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


def _deal_horizon(session: Session) -> int:
    """The lowest revision a deal write not yet visible to this session can carry."""
    if session.get_bind().dialect.name == "postgresql":
        # Transaction ids below the oldest one still running belong to finished transactions.
        return int(session.execute(_PG_XMIN).scalar_one())
    # SQLite: one writer at a time, revisions in commit order.
    return int(session.execute(select(func.coalesce(func.max(Deal.revision), 0) + 1)).scalar_one())


def live_deals(session: Session, floor: datetime) -> tuple[int, DealRows]:
    """Every deal that may be shown after ``floor`` (published or paused, valid until after
    it), and the horizon to poll deal_changes() from."""
    horizon = _deal_horizon(session)
    rows = session.execute(
        _DEALS.where(Deal.status.in_(("published", "paused")), Deal.valid_until > floor)
    ).all()
    return horizon, rows


def deal_changes(session: Session, horizon: int) -> tuple[int, DealRows]:
    """Deals written at or above ``horizon`` (some seen before: applying one twice is
    harmless), and the next horizon. The horizon is read first, so a write committed
    between the two reads is read again next time rather than missed."""
    following = _deal_horizon(session)
    rows = session.execute(_DEALS.where(Deal.revision >= horizon).order_by(Deal.revision)).all()
    if session.get_bind().dialect.name != "postgresql" and rows:
        following = max(following, max(r.revision for r in rows) + 1)
    return following, rows
