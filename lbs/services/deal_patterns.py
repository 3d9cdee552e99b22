"""Deals' window patterns as the deal book holds them: each distinct set of windows in a zone
once, with the span containing the instant last asked about.

Thousands of deals share a few patterns ("Mo-Fr 11:00-14:00" in Europe/Helsinki), and requests
ask at "now", which moves slowly against the windows: the span or gap containing an instant is
computed once (deal_schedule.span_or_gap) and reused while instants stay inside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from lbs.services.deal_schedule import Schedule, span_or_gap

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NEVER = int(np.iinfo(np.int64).max)


def micros(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


@dataclass
class Pattern:
    stored: str  # the windows column as stored (JSON text)
    raw: list[Any]  # ... parsed, as Deal.windows holds it
    windows: tuple[Any, ...]
    tz: ZoneInfo
    # For instants in [lo_us, hi_us) the window state is known: in a span ending at
    # ends_us, or (ends_us = -1) in no span.
    lo_us: int = 1
    hi_us: int = 0
    ends_us: int = -1

    def window_ends(self, at: datetime, at_us: int) -> int:
        """The end of the span containing ``at`` (``at_us``), or -1 outside every span."""
        if not self.windows:
            return NEVER
        if not self.lo_us <= at_us < self.hi_us:
            known, inside = span_or_gap(self.windows, self.tz, at)
            self.lo_us, self.hi_us = micros(known.starts_at), micros(known.ends_at)
            self.ends_us = self.hi_us if inside else -1
        return self.ends_us


class WindowPatterns:
    """Patterns by number, each (windows as stored, zone) parsed once."""

    def __init__(self) -> None:
        self._patterns: list[Pattern] = []
        self._number: dict[tuple[str, str], int] = {}

    def intern(self, stored: str, tz: str) -> int:
        found = self._number.get((stored, tz))
        if found is None:
            windows = json.loads(stored) if stored else []
            schedule = Schedule.of(EPOCH, EPOCH + timedelta(days=1), windows, tz)
            found = self._number[(stored, tz)] = len(self._patterns)
            self._patterns.append(Pattern(stored, windows, schedule.windows, schedule.tz))
        return found

    def __getitem__(self, number: int) -> Pattern:
        return self._patterns[number]
