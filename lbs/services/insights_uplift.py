"""Observational uplift of a deal: redemptions and visits in its hours, during it and in the weeks before.

For a deal that has started: its hours are its daily windows (all day without windows), in
the merchant's zone. "During" runs from valid_from to valid_until or now, whichever is
first; "before" is the same hours in the whole weeks before valid_from, as many as the deal
has run (rounded up), at most MAX_WEEKS_BEFORE. Counts are the merchant's redemptions (of
any deal) and visits in those hours, with rates per week and their difference. It is an
observation, not an experiment: seasons, weather and other deals move the same numbers.
Each period is hidden (null) when 1 to k-1 distinct users make its counts.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.models import Deal, Event
from lbs.services.deal_schedule import Occurrence, Window, window_occurrences
from lbs.services.insights_anonymity import K, too_few

MAX_WEEKS_BEFORE = 4
WEEK = timedelta(days=7)
KINDS = ("redemption", "visit")


@dataclass(frozen=True)
class _Period:
    spans: list[Occurrence]
    starts: list[datetime]

    def holds(self, at: datetime) -> bool:
        i = bisect_right(self.starts, at) - 1
        return i >= 0 and self.spans[i].contains(at)


def _period(windows: Sequence[Window], tz: ZoneInfo, start: datetime, end: datetime) -> _Period:
    spans = window_occurrences(windows, tz, start, end) if windows else [Occurrence(start, end)]
    clipped = [Occurrence(max(s.starts_at, start), min(s.ends_at, end)) for s in spans]
    return _Period(clipped, [s.starts_at for s in clipped])


def uplift(
    session: Session, merchant_id: int, tz: ZoneInfo, deals: Sequence[Deal], now: datetime
) -> list[dict[str, Any]]:
    """One entry per deal of ``deals`` that has started by ``now``."""
    plans = []
    for deal in deals:
        end = min(deal.valid_until, now)
        if end <= deal.valid_from:
            continue
        weeks_during = (end - deal.valid_from) / WEEK
        weeks_before = min(MAX_WEEKS_BEFORE, math.ceil(weeks_during))
        windows = [Window.from_json(w) for w in deal.windows or []]
        start_before = deal.valid_from - weeks_before * WEEK
        plans.append(
            (
                deal,
                weeks_during,
                weeks_before,
                _period(windows, tz, deal.valid_from, end),
                _period(windows, tz, start_before, deal.valid_from),
                start_before,
                end,
            )
        )
    if not plans:
        return []
    events = session.execute(
        select(Event.kind, Event.user_id, Event.occurred_at).where(
            Event.merchant_id == merchant_id,
            Event.kind.in_(KINDS),
            Event.occurred_at >= min(p[5] for p in plans),
            Event.occurred_at < max(p[6] for p in plans),
        )
    ).all()
    out = []
    for deal, weeks_during, weeks_before, during, before, _, _ in plans:
        counted = {name: _counts(events, period) for name, period in (("during", during), ("before", before))}
        hidden = any(too_few(len(users), K) for _, users in counted.values())
        entry: dict[str, Any] = {
            "deal_id": deal.id,
            "observational": True,
            "suppressed": hidden,
            "weeks_during": round(weeks_during, 3),
            "weeks_before": weeks_before,
        }
        rates = {}
        for name, weeks in (("during", weeks_during), ("before", weeks_before)):
            counts, _ = counted[name]
            per_week = {f"{kind}_per_week": counts[kind] / weeks if weeks else None for kind in counts}
            rates[name] = per_week
            entry[name] = None if hidden else {**counts, **per_week}
        entry["difference"] = None
        if not hidden and weeks_before:
            entry["difference"] = {
                k: rates["during"][k] - rates["before"][k]  # type: ignore[operator]
                for k in rates["during"]
            }
        out.append(entry)
    return out


def _counts(events: Sequence[Any], period: _Period) -> tuple[dict[str, int], set[int]]:
    counts = {"redemptions": 0, "visits": 0}
    users: set[int] = set()
    for kind, user_id, at in events:
        if period.holds(at):
            counts["redemptions" if kind == "redemption" else "visits"] += 1
            if user_id is not None:
                users.add(user_id)
    return counts, users
