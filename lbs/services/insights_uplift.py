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
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, distinct, false, func, or_, select
from sqlalchemy.orm import Session

from lbs.models import Deal, Event
from lbs.services.deal_schedule import Occurrence, Window, window_occurrences
from lbs.services.insights_anonymity import K, too_few

MAX_WEEKS_BEFORE = 4
WEEK = timedelta(days=7)
KINDS = ("redemption", "visit")


def _spans(windows: Sequence[Window], tz: ZoneInfo, start: datetime, end: datetime) -> list[Occurrence]:
    """The deal's hours from ``start`` to ``end`` (all of it without windows)."""
    spans = window_occurrences(windows, tz, start, end) if windows else [Occurrence(start, end)]
    return [Occurrence(max(s.starts_at, start), min(s.ends_at, end)) for s in spans]


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
        during = _spans(windows, tz, deal.valid_from, end)
        before = _spans(windows, tz, start_before, deal.valid_from)
        plans.append((deal, weeks_during, weeks_before, during, before))
    out = []
    for deal, weeks_during, weeks_before, during, before in plans:
        counted = _counts(session, merchant_id, during, before)
        hidden = any(too_few(users, K) for _, users in counted.values())
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


def _within(spans: Sequence[Occurrence]) -> ColumnElement[bool]:
    return or_(
        false(), *(and_(Event.occurred_at >= s.starts_at, Event.occurred_at < s.ends_at) for s in spans)
    )


def _counts(
    session: Session, merchant_id: int, during: Sequence[Occurrence], before: Sequence[Occurrence]
) -> dict[str, tuple[dict[str, int], int]]:
    """Per period: its redemptions and visits, and their distinct users. One statement: the
    merchant's events of the two kinds in the spans (an index range each), counted in SQL."""
    period = case((_within(during), "during"), else_="before").label("period")
    found = session.execute(
        select(
            period,
            func.sum(case((Event.kind == "redemption", 1), else_=0)),
            func.sum(case((Event.kind == "visit", 1), else_=0)),
            func.count(distinct(Event.user_id)),
        )
        .where(Event.merchant_id == merchant_id, Event.kind.in_(KINDS), _within([*during, *before]))
        .group_by(period)
    ).all()
    counted = {name: ({"redemptions": 0, "visits": 0}, 0) for name in ("during", "before")}
    for name, redemptions, visits, users in found:
        counted[name] = ({"redemptions": int(redemptions), "visits": int(visits)}, int(users))
    return counted
