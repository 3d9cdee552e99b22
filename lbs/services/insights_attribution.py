"""Where and when a funnel event counts for insights: local day and hour, area and surface (last touch).

An impression and a click carry their own surface; an impression its own position (an H3
res-9 cell, coarsened here to res 7). The rest are attributed to the user's last touch of
the deal before it, looked up in the event log when the rollup reads the event (cheaper
than at claim time, which is on the request path, and correct for client events that
arrive late):

- a click's area: that of the user's latest impression of the merchant (of the deal, for a
  deal's click) at or before it that has a position (map impressions have none: the
  viewport is not where the user stands);
- a claim's surface: that of the user's latest impression or click of the deal at or
  before it; its area: as a click's;
- a redemption: as its voucher's claim (at the voucher's claimed_at), so that a claim and
  its redemption fall in the same area and source bucket.

Touches older than LOOKBACK are not looked for; what finds none is "unknown".
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import h3
from sqlalchemy import Row, select, true
from sqlalchemy.orm import Session

from lbs.models import Deal, Event, Merchant, Voucher

FUNNEL_KINDS = ("impression", "click", "claim", "redemption")
TOUCH_KINDS = ("impression", "click")
AREA_RESOLUTION = 7
UNKNOWN = "unknown"
LOOKBACK = timedelta(days=30)
_CHUNK = 500  # ids per IN (...): under SQLite's limit on bound parameters


@dataclass(frozen=True, slots=True)
class FunnelEvent:
    merchant_id: int
    deal_id: int  # 0: none
    user_id: int
    kind: str
    local_day: date
    hour: int
    area: str
    source: str
    revenue_minor: int
    discount_minor: int


@dataclass(frozen=True, slots=True)
class _Touch:
    at: datetime
    kind: str
    deal_id: int | None
    surface: str | None
    cell: int | None


@lru_cache(maxsize=65536)
def area_of(cell: int | None) -> str:
    """The res-7 cell (hex) holding a res-9 event cell, or "unknown"."""
    if cell is None:
        return UNKNOWN
    return str(h3.cell_to_parent(h3.int_to_str(cell), AREA_RESOLUTION))


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class _Touches:
    """A set of users' impressions and clicks of some merchants, by (user, merchant), in time order."""

    def __init__(self, rows: Iterable[Any]) -> None:
        """``rows``: (user_id, merchant_id, deal_id, kind, surface, h3_cell, occurred_at)."""
        by_pair: dict[tuple[int, int], list[_Touch]] = defaultdict(list)
        for user_id, merchant_id, deal_id, kind, surface, cell, at in rows:
            by_pair[(user_id, merchant_id)].append(_Touch(at, kind, deal_id, surface, cell))
        self._touches: dict[tuple[int, int], list[_Touch]] = {}
        self._times: dict[tuple[int, int], list[datetime]] = {}
        for pair, touches in by_pair.items():
            touches.sort(key=lambda t: t.at)
            self._touches[pair] = touches
            self._times[pair] = [t.at for t in touches]

    def _back_from(self, user_id: int, merchant_id: int, at: datetime) -> Iterator[_Touch]:
        """The user's touches of the merchant at or before ``at``, newest first, back to
        at - LOOKBACK."""
        times = self._times.get((user_id, merchant_id))
        if times is None:
            return
        touches = self._touches[(user_id, merchant_id)]
        for i in range(bisect.bisect_right(times, at) - 1, -1, -1):
            if touches[i].at < at - LOOKBACK:
                return
            yield touches[i]

    def latest(
        self, user_id: int, merchant_id: int, at: datetime, deal_id: int | None, kinds: tuple[str, ...]
    ) -> _Touch | None:
        """The latest touch at or before ``at`` (not before at - LOOKBACK) of one of ``kinds``,
        of ``deal_id`` if given."""
        return next(
            (
                touch
                for touch in self._back_from(user_id, merchant_id, at)
                if touch.kind in kinds and (deal_id is None or touch.deal_id == deal_id)
            ),
            None,
        )

    def area(self, user_id: int, merchant_id: int, at: datetime, deal_id: int | None) -> str:
        """Where the user stood when last seeing the deal (the merchant) at or before ``at``."""
        for touch in self._back_from(user_id, merchant_id, at):
            if touch.kind == "impression" and touch.cell is not None and deal_id in (None, touch.deal_id):
                return area_of(touch.cell)
        return UNKNOWN


EventRow = Row[tuple[int, str, int, int, int | None, int | None, int | None, str | None, datetime]]


def event_rows(session: Session, *conditions: object) -> Sequence[EventRow]:
    """The funnel events matching ``conditions``, as attribute() takes them, in log order."""
    return session.execute(
        select(
            Event.id,
            Event.kind,
            Event.user_id,
            Event.merchant_id,
            Event.deal_id,
            Event.voucher_id,
            Event.h3_cell,
            Event.surface,
            Event.occurred_at,
        )
        .where(
            Event.kind.in_(FUNNEL_KINDS),
            Event.user_id.is_not(None),
            Event.merchant_id.is_not(None),
            *conditions,  # type: ignore[arg-type]
        )
        .order_by(Event.id)
    ).all()  # type: ignore[return-value]


def attribute(session: Session, rows: Sequence[EventRow]) -> list[FunnelEvent]:
    """The rows (event_rows') as insights count them: local time, area, source, money."""
    if not rows:
        return []
    merchant_ids = {r.merchant_id for r in rows}
    zones = {
        m: zone(tz)
        for m, tz in _in_chunks(
            session,
            lambda ids: select(Merchant.id, Merchant.timezone).where(Merchant.id.in_(ids)),
            merchant_ids,
        )
    }
    vouchers = {
        v.id: v
        for v in _in_chunks(
            session,
            lambda ids: (
                select(
                    Voucher.id,
                    Voucher.deal_id,
                    Voucher.claimed_at,
                    Voucher.price_minor,
                    Deal.list_price_minor,
                )
                .join(Deal, Deal.id == Voucher.deal_id)
                .where(Voucher.id.in_(ids))
            ),
            {r.voucher_id for r in rows if r.kind == "redemption" and r.voucher_id is not None},
        )
    }
    touches = _touches_for(session, [r for r in rows if r.kind != "impression"], vouchers)
    attributed = []
    for r in rows:
        local = r.occurred_at.astimezone(zones[r.merchant_id])
        area, source, revenue, discount = UNKNOWN, r.surface or UNKNOWN, 0, 0
        if r.kind == "impression":
            area = area_of(r.h3_cell)
        elif r.kind == "click":
            area = touches.area(r.user_id, r.merchant_id, r.occurred_at, r.deal_id)
        else:
            at, deal_id = r.occurred_at, r.deal_id
            voucher = vouchers.get(r.voucher_id) if r.kind == "redemption" else None
            if voucher is not None:
                at, deal_id = voucher.claimed_at, voucher.deal_id
                revenue = voucher.price_minor
                discount = max(voucher.list_price_minor - voucher.price_minor, 0)
            if deal_id is not None:
                last = touches.latest(r.user_id, r.merchant_id, at, deal_id, TOUCH_KINDS)
                source = (last.surface if last else None) or UNKNOWN
                area = touches.area(r.user_id, r.merchant_id, at, deal_id)
        attributed.append(
            FunnelEvent(
                r.merchant_id,
                r.deal_id or 0,
                r.user_id,
                r.kind,
                local.date(),
                local.hour,
                area,
                source,
                revenue,
                discount,
            )
        )
    return attributed


def _touches_for(
    session: Session, rows: Sequence[EventRow], vouchers: dict[int, Row[tuple[object, ...]]]
) -> _Touches:
    """The touches that ``rows`` (clicks, claims, redemptions) may be attributed to."""
    if not rows:
        return _Touches([])
    times = [r.occurred_at for r in rows] + [v.claimed_at for v in vouchers.values()]
    earliest, latest = min(times) - LOOKBACK, max(times)
    merchant_ids = sorted({r.merchant_id for r in rows})
    return _Touches(
        _in_chunks(
            session,
            lambda ids: (
                select(
                    Event.user_id,
                    Event.merchant_id,
                    Event.deal_id,
                    Event.kind,
                    Event.surface,
                    Event.h3_cell,
                    Event.occurred_at,
                )
                .where(
                    Event.user_id.in_(ids),
                    # Past a few hundred merchants (a city's batch), the users' own events suffice.
                    Event.merchant_id.in_(merchant_ids) if len(merchant_ids) <= _CHUNK else true(),
                    Event.kind.in_(TOUCH_KINDS),
                    Event.occurred_at >= earliest,
                    Event.occurred_at <= latest,
                )
                # Touches at the same instant: the later in the log is the last (stable sort).
                .order_by(Event.id)
            ),
            {r.user_id for r in rows},
        )
    )


def _in_chunks(session: Session, query: Callable[[list[int]], Any], ids: Iterable[int | None]) -> list[Any]:
    """The rows of ``query`` over ``ids`` (None left out), _CHUNK ids at a time."""
    listed = sorted(i for i in set(ids) if i is not None)
    found: list[Any] = []
    for start in range(0, len(listed), _CHUNK):
        found.extend(session.execute(query(listed[start : start + _CHUNK])).all())
    return found
