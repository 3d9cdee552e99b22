"""When a deal is claimable: daily windows in the merchant's local time, and its state at an instant.

Pure functions of the deal's fields and an aware ``at``; nothing here reads a clock.
Local times resolve like ``zoneinfo`` with ``fold=0``: an ambiguous wall time (clocks
going back) means its first occurrence, a skipped one (clocks going forward) is shifted
forward by the gap. See docs/deals.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime

from lbs.text import WithPattern

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Instants a client may name (deal validity, `at=`): years 2000 to 2099 as written (in the
# instant's own offset, so that the OpenAPI document can state the rule as a pattern), far
# from datetime's limits, so that window arithmetic around them never overflows. In UTC they
# lie from EARLIEST to LATEST.
EARLIEST = datetime(1999, 12, 31, tzinfo=UTC)
LATEST = datetime(2100, 1, 2, tzinfo=UTC)
INSTANT_PATTERN = "^20[0-9]{2}-"


def _supported(instant: datetime) -> datetime:
    if not 2000 <= instant.year <= 2099:
        raise ValueError("the year must be from 2000 to 2099")
    return instant


Instant = Annotated[AwareDatetime, AfterValidator(_supported), WithPattern(INSTANT_PATTERN)]
MINUTES_PER_DAY = 24 * 60
# Windows repeat weekly, so the next one (if any) starts within a week and a day, or
# two weeks when the one in between vanished in a spring-forward gap.
_LOOKAHEAD = timedelta(days=15)
# How far back a span containing an instant is merged with the windows before it.
_LOOKBEHIND = timedelta(days=1)
_FOLLOW_STEP = timedelta(days=7)
# How far a continuous span is followed: beyond any validity (at most 366 days).
_HORIZON = timedelta(days=370)
_HHMM = re.compile(r"^(\d\d):(\d\d)$")


def parse_hhmm(text: str) -> int:
    """'18:30' -> minutes after midnight; '24:00' is allowed (the end of the day)."""
    match = _HHMM.match(text)
    if not match:
        raise ValueError(f"{text!r} is not HH:MM")
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} is not a time between 00:00 and 24:00")
    return hours * 60 + minutes


@dataclass(frozen=True)
class Window:
    """Every listed weekday from ``start_min`` to ``end_min`` local; an earlier end is the next day."""

    days: frozenset[int]  # 0 = Monday: the day the window starts
    start_min: int  # 0..1439
    end_min: int  # 1..1440

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Window:
        return cls(
            frozenset(DAYS.index(d) for d in raw["days"]), parse_hhmm(raw["start"]), parse_hhmm(raw["end"])
        )

    @property
    def crosses_midnight(self) -> bool:
        return self.end_min <= self.start_min


@dataclass(frozen=True)
class Occurrence:
    """One span of a window, as UTC instants: starts_at <= t < ends_at."""

    starts_at: datetime
    ends_at: datetime

    def contains(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def _instant(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    day += timedelta(days=minutes // MINUTES_PER_DAY)
    minutes %= MINUTES_PER_DAY
    local = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=tz)
    return local.astimezone(UTC)


def window_occurrences(
    windows: Sequence[Window], tz: ZoneInfo, start: datetime, end: datetime
) -> list[Occurrence]:
    """The windows' spans overlapping [start, end), overlapping or touching ones merged, in order."""
    spans: list[Occurrence] = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    while day <= last:
        for window in windows:
            if day.weekday() not in window.days:
                continue
            end_min = window.end_min + (MINUTES_PER_DAY if window.crosses_midnight else 0)
            span = Occurrence(_instant(day, window.start_min, tz), _instant(day, end_min, tz))
            # Empty when the whole window falls in a skipped hour.
            if span.starts_at < span.ends_at and span.ends_at > start and span.starts_at < end:
                spans.append(span)
        day += timedelta(days=1)
    spans.sort(key=lambda s: s.starts_at)
    merged: list[Occurrence] = []
    for span in spans:
        if merged and span.starts_at <= merged[-1].ends_at:
            if span.ends_at > merged[-1].ends_at:
                merged[-1] = Occurrence(merged[-1].starts_at, span.ends_at)
        else:
            merged.append(span)
    return merged


def _containing(
    windows: tuple[Window, ...], tz: ZoneInfo, at: datetime, until: datetime
) -> Occurrence | None:
    """The merged span containing ``at``, built from the windows in [at - a day, until)."""
    for span in window_occurrences(windows, tz, at - _LOOKBEHIND, until):
        if span.contains(at):
            return span
    return None


# Many deals share a few window patterns and one `at` per request: the spans of a pattern
# at an instant are computed once, and each deal only clips them to its validity.
@lru_cache(maxsize=4096)
def _span_at(windows: tuple[Window, ...], tz: ZoneInfo, at: datetime) -> Occurrence | None:
    """The span containing ``at``, back-to-back windows followed (a week per step) up to the horizon."""
    found = _containing(windows, tz, at, at + timedelta(microseconds=1))
    while found is not None and found.ends_at < at + _HORIZON:
        following = _containing(windows, tz, found.ends_at, found.ends_at + _FOLLOW_STEP)
        if following is None or following.ends_at <= found.ends_at:
            break
        found = Occurrence(found.starts_at, following.ends_at)
    return found


@lru_cache(maxsize=4096)
def _span_after(windows: tuple[Window, ...], tz: ZoneInfo, at: datetime) -> Occurrence | None:
    """The first span starting after ``at`` (within the lookahead)."""
    for span in window_occurrences(windows, tz, at, at + _LOOKAHEAD):
        if span.starts_at > at:
            return span
    return None


def span_or_gap(windows: tuple[Window, ...], tz: ZoneInfo, at: datetime) -> tuple[Occurrence, bool]:
    """What the windows are doing at ``at``: the span containing it (True), or the gap from
    ``at`` to the next span's start (False; a lookahead long when none follows). Every
    instant inside the returned occurrence gets the same answer, so callers may cache it."""
    span = _span_at(windows, tz, at)
    if span is not None:
        return span, True
    following = _span_after(windows, tz, at)
    return Occurrence(at, following.starts_at if following else at + _LOOKAHEAD), False


@lru_cache(maxsize=1024)
def _parse_windows(key: tuple[tuple[tuple[str, ...], str, str], ...]) -> tuple[Window, ...]:
    return tuple(Window.from_json({"days": days, "start": start, "end": end}) for days, start, end in key)


@dataclass(frozen=True)
class Schedule:
    """A deal's validity and windows: when, as instants, it may be claimed."""

    valid_from: datetime
    valid_until: datetime
    windows: tuple[Window, ...]
    tz: ZoneInfo

    @classmethod
    def of(
        cls, valid_from: datetime, valid_until: datetime, windows: Sequence[Mapping[str, Any]], tz: str
    ) -> Schedule:
        key = tuple((tuple(w["days"]), w["start"], w["end"]) for w in windows)
        return cls(valid_from, valid_until, _parse_windows(key), ZoneInfo(tz))

    def _clip(self, span: Occurrence | None) -> Occurrence | None:
        if span is None:
            return None
        clipped = Occurrence(max(span.starts_at, self.valid_from), min(span.ends_at, self.valid_until))
        return clipped if clipped.starts_at < clipped.ends_at else None

    def window_at(self, at: datetime) -> Occurrence | None:
        """The span containing ``at``, if the deal is inside a window then."""
        if not self.valid_from <= at < self.valid_until:
            return None
        if not self.windows:
            return Occurrence(self.valid_from, self.valid_until)
        return self._clip(_span_at(self.windows, self.tz, at))

    def next_window(self, at: datetime) -> Occurrence | None:
        """The first span starting after ``at``, if one starts before ``valid_until``."""
        if at >= self.valid_until:
            return None
        if at < self.valid_from:
            # Validity starting inside a window opens that window then.
            opening = self.window_at(self.valid_from)
            if opening is not None:
                return opening
        if not self.windows:
            return None
        return self._clip(_span_after(self.windows, self.tz, max(at, self.valid_from)))


class DealState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    PAUSED = "paused"
    SOLD_OUT = "sold_out"
    EXPIRED = "expired"


def deal_state(
    status: str,
    valid_from: datetime,
    valid_until: datetime,
    ended_at: datetime | None,
    quantity_total: int | None,
    quantity_claimed: int,
    at: datetime,
) -> DealState:
    """The state at ``at``, from what the merchant did (status) and the clock; first match wins."""
    if status == "draft":
        return DealState.DRAFT
    if at >= valid_until or (ended_at is not None and at >= ended_at):
        return DealState.EXPIRED
    if status == "paused":
        return DealState.PAUSED
    if quantity_total is not None and quantity_claimed >= quantity_total:
        return DealState.SOLD_OUT
    if at < valid_from:
        return DealState.SCHEDULED
    return DealState.LIVE


# Why a published deal cannot be claimed at an instant (the 409's ``reason``).
UNCLAIMABLE_REASONS = {
    DealState.SCHEDULED: "not_started",
    DealState.PAUSED: "paused",
    DealState.SOLD_OUT: "sold_out",
    DealState.EXPIRED: "expired",
}
OUTSIDE_WINDOW = "outside_window"


def unclaimable_reason(state: DealState, window_now: Occurrence | None) -> str | None:
    """None when a deal in this state, with this current window, can be claimed."""
    if state is DealState.LIVE:
        return None if window_now is not None else OUTSIDE_WINDOW
    return UNCLAIMABLE_REASONS.get(state, state.value)
