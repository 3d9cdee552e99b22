"""A merchant's opening hours as a week an app can show: per local day its open intervals.

Computed from the same parsed OSM expression as open_now (lbs.services.hours), by
opening-hours-py's intervals over the week (Monday to Sunday) that holds ``at`` in the
merchant's zone, so that whatever the rule says for those dates comes out: public holidays
of the country ("PH off"), "off" days, sunrise at the place, and a DST day's wall-clock
times. Like Google's ``weekday_text``/``periods``, an interval that runs past midnight is
listed on the day it opens, closing the next day (Fr 18:00-02:00 is Friday's); a day open
around the clock is 00:00-24:00, so 24/7 is seven such days. The night after the week's
Sunday is read too, so that Sunday's overnight interval has its real end; the early hours
of its Monday that belong to the Sunday before are that Sunday's, not listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import opening_hours

from lbs.services.hours import parsed_at_place, place_key

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_STATES = {opening_hours.State.OPEN: "open", opening_hours.State.UNKNOWN: "unknown"}


@dataclass(frozen=True)
class Interval:
    opens: str  # HH:MM local, on the day it is listed under
    closes: str  # HH:MM local; 24:00 is the end of that day
    closes_next_day: bool
    state: str  # "open", or "unknown" where the rule leaves it undecided

    def public(self) -> dict[str, Any]:
        return {
            "opens": self.opens,
            "closes": self.closes,
            "closes_next_day": self.closes_next_day,
            "state": self.state,
        }

    def text(self) -> str:
        span = f"{self.opens}\N{EN DASH}{self.closes}"
        return span if self.state == "open" else f"{span} (unconfirmed)"


@dataclass(frozen=True)
class Day:
    date: date
    intervals: tuple[Interval, ...]

    def text(self) -> str:
        """As Google's weekday_text: 'Monday: 08:00\N{EN DASH}18:00', 'Sunday: Closed'."""
        name = DAY_NAMES[self.date.weekday()]
        if not self.intervals:
            return f"{name}: Closed"
        if [(i.opens, i.closes, i.state) for i in self.intervals] == [("00:00", "24:00", "open")]:
            return f"{name}: Open 24 hours"
        return f"{name}: " + ", ".join(i.text() for i in self.intervals)

    def public(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "weekday": DAYS[self.date.weekday()],
            "intervals": [i.public() for i in self.intervals],
            "text": self.text(),
        }


@dataclass(frozen=True)
class Week:
    days: tuple[Day, ...]  # Monday to Sunday
    today: int  # the position of ``at``'s local date

    def public(self) -> dict[str, Any]:
        days = [d.public() for d in self.days]
        return {"today": days[self.today], "week": days}


def week_hours(
    expression: str | None, zone: str, lat: float, lon: float, at: datetime
) -> dict[str, Any] | None:
    """The week holding ``at`` in ``zone``: ``today`` and ``week`` (Monday first); None when
    the merchant has no hours or they do not parse."""
    if not expression:
        return None
    local = at.astimezone(ZoneInfo(zone))
    monday = local.date() - timedelta(days=local.weekday())
    week = _week(place_key(expression, zone, lat, lon), monday)
    return None if week is None else Week(week, local.weekday()).public()


def merchant_week(merchant: Mapping[str, Any], at: datetime) -> dict[str, Any] | None:
    """week_hours() of a public merchant representation."""
    return week_hours(merchant["opening_hours"], merchant["timezone"], merchant["lat"], merchant["lon"], at)


@lru_cache(maxsize=16_384)
def _week(key: tuple[str, str, float | None, float | None], monday: date) -> tuple[Day, ...] | None:
    """Kept per expression (and place, where it matters) and week: every merchant sharing
    an expression reads its week once a week."""
    parsed = parsed_at_place(key)
    if parsed is None:
        return None
    tz = ZoneInfo(key[1])
    first = monday - timedelta(days=1)  # to know whether Monday's first hours go on from Sunday
    spans = _spans(parsed, _midnight(first, tz), _midnight(monday + timedelta(days=8), tz))
    listed: dict[date, list[Interval]] = {monday + timedelta(days=n): [] for n in range(7)}
    for day, interval in _by_day(spans, first, monday + timedelta(days=8), tz):
        if day in listed:
            listed[day].append(interval)
    return tuple(Day(day, tuple(intervals)) for day, intervals in listed.items())


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def _spans(
    parsed: opening_hours.OpeningHours, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, str]]:
    """The open (or undecided) spans in [start, end), touching ones of one state merged."""
    spans: list[tuple[datetime, datetime, str]] = []
    for opens, closes, state, _comment in parsed.intervals(start, end):
        kind = _STATES.get(state)
        if kind is None:
            continue
        if spans and spans[-1][1] == opens and spans[-1][2] == kind:
            spans[-1] = (spans[-1][0], closes, kind)
        else:
            spans.append((opens, closes, kind))
    return spans


def _by_day(
    spans: list[tuple[datetime, datetime, str]], first: date, end: date, tz: ZoneInfo
) -> list[tuple[date, Interval]]:
    """Each span cut at local midnights; a last piece that goes on from the day before and
    ends within its day is that day's overnight end instead (listed on the day it opens)."""
    out: list[tuple[date, Interval]] = []
    for opens, closes, state in spans:
        day = opens.date()
        while day < end and _midnight(day, tz) < closes:
            day_end = _midnight(day + timedelta(days=1), tz)
            piece_opens = max(opens, _midnight(day, tz))
            goes_on = opens < _midnight(day, tz)
            yesterday = day - timedelta(days=1)
            # Only a span that opened yesterday ends "overnight"; one open for days (24 h on
            # weekdays, then until 22:00) lists each day's piece on its own day.
            if goes_on and closes < day_end and opens.date() == yesterday and out and out[-1][0] == yesterday:
                previous = out[-1][1]
                out[-1] = (out[-1][0], Interval(previous.opens, _clock(closes), True, state))
            elif not goes_on or day > first:
                out.append(
                    (day, Interval(_clock(piece_opens), _clock(min(closes, day_end), day), False, state))
                )
            day += timedelta(days=1)
    return out


def _clock(instant: datetime, day: date | None = None) -> str:
    """HH:MM on the wall clock; the midnight that ends ``day`` is 24:00."""
    if day is not None and instant.date() > day:
        return "24:00"
    return f"{instant.hour:02d}:{instant.minute:02d}"
