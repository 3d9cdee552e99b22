"""The insights rollup: each merchant's (and deal's) funnel per local day and bucket, kept by refresh.

Why this shape (docs/insights.md has the measurements): the funnel's counts add up over
days, and so do impressions counted as unique user-days; distinct users do not. A row
holds one local day of one bucket (total, an hour, an area, a source) of a merchant
(deal_id 0) or of one of its deals: the counts, and the set of its users as compact bytes
(lbs.services.insight_sets). A request sums the counts of the days it covers and unions
their user sets: a few thousand rows, whatever the number of events behind them.

refresh_insights() reads the events after a watermark (insight_progress) in log order and
merges them into the rows, in one transaction that moves the watermark too, so an event is
counted once. Event ids come from a sequence, so an id may be taken by a transaction that
commits after a larger one: the watermark only passes an id once every transaction open
when it was seen has ended (SETTLE_S after; every transaction that writes events ends
within the request deadline or an event buffer flush). A read adds the events after the
watermark itself (tail_cells), so its answer does not wait for a refresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from lbs.db import dialect_insert
from lbs.models import Event, InsightDay, InsightProgress
from lbs.services import insight_sets
from lbs.services.insight_sets import Flags, Ids
from lbs.services.insights_attribution import FunnelEvent, attribute, event_rows

DIMS = ("total", "hour", "area", "source")
SETTLE_S = 60.0
REFRESH_EVENTS = 200_000  # events per transaction of a refresh
# (merchant_id, dim, deal_id, local_day, key): InsightDay's primary key.
CellKey = tuple[int, str, int, date, str]
_COUNTS = ("clicks", "claims", "redemptions", "revenue_minor", "discount_minor")


@dataclass
class Cell:
    """One rollup row in memory: users (flag: saw an impression that day) and counts."""

    ids: Ids = field(default_factory=lambda: insight_sets.EMPTY)
    flags: Flags = field(default_factory=lambda: np.zeros(0, dtype=bool))
    clicks: int = 0
    claims: int = 0
    redemptions: int = 0
    revenue_minor: int = 0
    discount_minor: int = 0

    @property
    def impressions(self) -> int:
        return int(self.flags.sum())

    def merged(self, other: Cell) -> Cell:
        ids, flags = insight_sets.merge([(self.ids, self.flags), (other.ids, other.flags)])
        return Cell(ids, flags, *(getattr(self, c) + getattr(other, c) for c in _COUNTS))


class _Builder:
    __slots__ = ("claims", "clicks", "discount_minor", "redemptions", "revenue_minor", "users")

    def __init__(self) -> None:
        self.users: dict[int, bool] = {}
        self.clicks = self.claims = self.redemptions = self.revenue_minor = self.discount_minor = 0

    def cell(self) -> Cell:
        ids = np.fromiter(sorted(self.users), dtype=np.int64, count=len(self.users))
        flags = np.fromiter((self.users[i] for i in ids.tolist()), dtype=bool, count=len(ids))
        return Cell(ids, flags, *(getattr(self, c) for c in _COUNTS))


def build_cells(events: Iterable[FunnelEvent]) -> dict[CellKey, Cell]:
    """The rollup rows that ``events`` make on their own."""
    builders: dict[CellKey, _Builder] = defaultdict(_Builder)
    for e in events:
        impression = e.kind == "impression"
        for deal_id in (0, e.deal_id) if e.deal_id else (0,):
            for dim, key in (("total", ""), ("hour", str(e.hour)), ("area", e.area), ("source", e.source)):
                b = builders[(e.merchant_id, dim, deal_id, e.local_day, key)]
                b.users[e.user_id] = b.users.get(e.user_id, False) or impression
                if e.kind == "click":
                    b.clicks += 1
                elif e.kind == "claim":
                    b.claims += 1
                elif e.kind == "redemption":
                    b.redemptions += 1
                    b.revenue_minor += e.revenue_minor
                    b.discount_minor += e.discount_minor
    return {key: b.cell() for key, b in builders.items()}


@dataclass(frozen=True)
class RefreshReport:
    events: int
    rows: int
    rolled_up_to: int
    waiting_from: int  # the newest id seen, rolled up once SETTLE_S have passed since seen_at
    seen_at: datetime | None


def refresh_insights(
    session: Session, now: datetime, *, settle_s: float = SETTLE_S, max_events: int = REFRESH_EVENTS
) -> RefreshReport:
    """Roll up the events after the watermark that are settled, at most ``max_events`` of
    them, in the session's transaction (the caller commits). One refresh at a time: the
    progress row is locked (SQLite: the caller's transaction holds the write lock)."""
    progress = session.execute(
        select(InsightProgress).where(InsightProgress.id == 1).with_for_update()
    ).scalar_one()
    settled = progress.seen_at is not None and progress.seen_at <= now - timedelta(seconds=settle_s)
    target = progress.seen_max_id if settled else progress.rolled_up_to
    upper = min(target, progress.rolled_up_to + max_events)
    rows = (
        event_rows(session, Event.id > progress.rolled_up_to, Event.id <= upper)
        if upper > progress.rolled_up_to
        else []
    )
    cells = build_cells(attribute(session, rows))
    _merge_into_table(session, cells)
    progress.rolled_up_to = upper
    if upper == progress.seen_max_id and (progress.seen_at is None or settled):
        progress.seen_max_id = session.execute(select(func.coalesce(func.max(Event.id), 0))).scalar_one()
        progress.seen_at = now
    session.flush()
    return RefreshReport(len(rows), len(cells), upper, progress.seen_max_id, progress.seen_at)


def _merge_into_table(session: Session, cells: dict[CellKey, Cell]) -> None:
    if not cells:
        return
    stored = {key: cell for key, cell in stored_cells(session, list(cells)).items()}
    values = []
    for key, cell in cells.items():
        old = stored.get(key)
        merged = cell if old is None else old.merged(cell)
        merchant_id, dim, deal_id, local_day, bucket = key
        values.append(
            {
                "merchant_id": merchant_id,
                "dim": dim,
                "deal_id": deal_id,
                "local_day": local_day,
                "key": bucket,
                "users": len(merged.ids),
                "user_ids": insight_sets.encode(merged.ids, merged.flags),
                "impressions": merged.impressions,
                **{c: getattr(merged, c) for c in _COUNTS},
            }
        )
    insert = dialect_insert(session)(InsightDay)
    updated = {c: insert.excluded[c] for c in ("users", "user_ids", "impressions", *_COUNTS)}
    statement = insert.on_conflict_do_update(index_elements=_KEY_COLUMNS, set_=updated)
    for start in range(0, len(values), 1000):
        session.execute(statement, values[start : start + 1000])


_KEY_COLUMNS = ["merchant_id", "dim", "deal_id", "local_day", "key"]


def stored_cells(session: Session, keys: Sequence[CellKey]) -> dict[CellKey, Cell]:
    """The stored rows of ``keys`` that exist, decoded with their flags."""
    found: dict[CellKey, Cell] = {}
    columns = [getattr(InsightDay, c) for c in _KEY_COLUMNS]
    for start in range(0, len(keys), 100):  # 5 parameters each: under SQLite's limit
        chunk = keys[start : start + 100]
        for row in session.execute(select(InsightDay).where(tuple_(*columns).in_(chunk))).scalars():
            ids, flags = insight_sets.decode(row.user_ids)
            key = (row.merchant_id, row.dim, row.deal_id, row.local_day, row.key)
            found[key] = Cell(ids, flags, *(getattr(row, c) for c in _COUNTS))
    return found


@dataclass(slots=True)
class DayRow:
    """A stored row as a read sums it: the users undecoded until needed."""

    dim: str
    deal_id: int
    local_day: date
    key: str
    impressions: int
    clicks: int
    claims: int
    redemptions: int
    revenue_minor: int
    discount_minor: int
    user_ids: bytes | None = None  # encoded (a stored row)
    ids: Ids | None = None  # decoded (a row with the tail merged in)

    def users(self) -> Ids:
        if self.ids is None:
            assert self.user_ids is not None
            self.ids = insight_sets.decode_ids(self.user_ids)
        return self.ids


def rows_in_range(
    session: Session,
    merchant_id: int,
    wanted: Sequence[tuple[str, Sequence[int]]],
    first: date,
    last: date,
) -> list[DayRow]:
    """The rollup rows of ``wanted`` (dim, deal ids) from ``first`` to ``last``, with the events
    after the watermark merged in: what the log holds now."""
    wanted_rows = [and_(InsightDay.dim == dim, InsightDay.deal_id.in_(deal_ids)) for dim, deal_ids in wanted]
    # One statement: the watermark and the rows it covers are of one snapshot (a refresh
    # committing in between would otherwise be counted twice or not at all).
    columns = [
        getattr(InsightDay, c) for c in ("dim", "deal_id", "local_day", "key", "impressions", *_COUNTS)
    ]
    statement = (
        select(InsightProgress.rolled_up_to, InsightDay.user_ids, *columns)
        .select_from(InsightProgress)
        .outerjoin(
            InsightDay,
            and_(
                InsightDay.merchant_id == merchant_id,
                or_(*wanted_rows),
                InsightDay.local_day >= first,
                InsightDay.local_day <= last,
            ),
        )
        .where(InsightProgress.id == 1)
    )
    rows: dict[tuple[str, int, date, str], DayRow] = {}
    watermark = 0
    for rolled_up_to, user_ids, *values in session.connection().execute(statement).all():  # Core: no ORM rows
        watermark = rolled_up_to
        if user_ids is not None:
            row = DayRow(*values)
            row.user_ids = user_ids
            rows[(row.dim, row.deal_id, row.local_day, row.key)] = row
    tail = tail_cells(session, merchant_id, watermark, first, last)
    dims = {dim: set(deal_ids) for dim, deal_ids in wanted}
    for (_, dim, deal_id, local_day, key), cell in tail.items():
        if deal_id not in dims.get(dim, ()):
            continue
        at = (dim, deal_id, local_day, key)
        if at in rows:
            old = rows[at]
            assert old.user_ids is not None
            cell = Cell(*insight_sets.decode(old.user_ids), *(getattr(old, c) for c in _COUNTS)).merged(cell)
        rows[at] = _day_row(at, cell.impressions, cell, ids=cell.ids)
    return list(rows.values())


def _day_row(
    at: tuple[str, int, date, str],
    impressions: int,
    counts: Any,
    *,
    user_ids: bytes | None = None,
    ids: Ids | None = None,
) -> DayRow:
    """A DayRow at ``at`` (dim, deal id, day, key) with the counts of ``counts`` (a row, a Cell)."""
    return DayRow(
        dim=at[0],
        deal_id=at[1],
        local_day=at[2],
        key=at[3],
        impressions=impressions,
        clicks=counts.clicks,
        claims=counts.claims,
        redemptions=counts.redemptions,
        revenue_minor=counts.revenue_minor,
        discount_minor=counts.discount_minor,
        user_ids=user_ids,
        ids=ids,
    )


def tail_cells(
    session: Session, merchant_id: int, after_id: int, first: date, last: date
) -> dict[CellKey, Cell]:
    """The rows that the merchant's events after ``after_id`` make, from ``first`` to ``last``.

    Only the id bounds the read (the tail is short): with a time bound as well, the planner
    may take the merchant's index over its whole history instead."""
    rows = event_rows(session, Event.id > after_id, Event.merchant_id == merchant_id)
    events = [e for e in attribute(session, rows) if first <= e.local_day <= last]
    return build_cells(events)
