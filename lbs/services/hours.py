"""Opening hours: a merchant's OSM opening_hours evaluated at an instant, in its own zone.

Parsed and evaluated by opening-hours-py: overnight ranges (Fr-Sa 18:00-02:00) run past
midnight, 24/7 never closes, "off" never opens, and a day of a DST change has its real
length (times are wall-clock times in the merchant's zone). PH rules use the public
holidays of the country at the merchant's coordinates (the library's calendar); where it
knows no calendar, PH matches no day. Hours that do not parse, or that leave the instant
undecided ("unknown"), give open_now null: the merchant is kept, not hidden.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import opening_hours
from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.db import IN_CHUNK
from lbs.models import Merchant

# Missing from the library's stubs:
_UNPARSEABLE = (opening_hours.ParserError, ValueError)  # type: ignore[attr-defined]
_NO_CALENDAR = (opening_hours.UnknownCountryError, opening_hours.InvalidCoordinatesError)  # type: ignore[attr-defined]
# Steps of next_change() walked to find the next opening (closed -> unknown -> open ...).
_MAX_STEPS = 8
# What in an expression depends on where the merchant is: public and school holidays (the
# country's calendar) and sun events (sunrise at its coordinates). Anything else means the
# same in every place of one zone, so it is parsed and evaluated once per expression and
# zone, however many merchants share it (a parsed expression with a place is ~1 KB).
_PLACE_BOUND = re.compile(r"\b(?:PH|SH)\b|sunrise|sunset|dawn|dusk", re.IGNORECASE)


@dataclass(frozen=True)
class Hours:
    open_now: bool | None  # None: no hours, hours that do not parse, or undecided now
    closes_at: datetime | None  # when open: the next closing, None if it never closes
    next_open_at: datetime | None  # when not open: the next opening, None if none is known

    def public(self) -> dict[str, Any]:
        """ISO 8601 with the merchant's offset."""
        return {
            "open_now": self.open_now,
            "closes_at": None if self.closes_at is None else self.closes_at.isoformat(),
            "next_open_at": None if self.next_open_at is None else self.next_open_at.isoformat(),
        }


UNKNOWN = Hours(None, None, None)


# Per expression, zone and (where it matters) place, the last answer and the span it holds
# for: [at, until). Requests ask at "now", which moves slowly against the hours, so most
# pages find theirs.
_latest: LRUCache[tuple[str, str, float | None, float | None], tuple[datetime, datetime, Hours]] = LRUCache(
    maxsize=65_536
)
_latest_lock = threading.Lock()
_NEVER = datetime.max.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)
def _place_bound(expression: str) -> bool:
    return _PLACE_BOUND.search(expression) is not None


@lru_cache(maxsize=65_536)
def _parsed(
    expression: str, zone: str, lat: float | None, lon: float | None
) -> opening_hours.OpeningHours | None:
    tz = ZoneInfo(zone)
    if lat is not None and lon is not None:
        try:
            return opening_hours.OpeningHours(expression, timezone=tz, coords=(lat, lon), auto_country=True)
        except _NO_CALENDAR:
            pass  # no holiday calendar here: PH matches no day
        except _UNPARSEABLE:
            return None
    try:  # without a place: no calendar, no sun
        return opening_hours.OpeningHours(expression, timezone=tz)
    except _UNPARSEABLE:
        return None


def place_key(
    expression: str, zone: str, lat: float, lon: float
) -> tuple[str, str, float | None, float | None]:
    """What the expression's meaning depends on: the place only where it names holidays or the sun."""
    return (expression, zone, lat, lon) if _place_bound(expression) else (expression, zone, None, None)


def parsed_at_place(key: tuple[str, str, float | None, float | None]) -> opening_hours.OpeningHours | None:
    """The expression of a place_key() parsed (kept), or None when it does not parse."""
    return _parsed(*key)


def hours_at(expression: str | None, zone: str, lat: float, lon: float, at: datetime) -> Hours:
    """Whether the merchant is open at ``at`` (any zone), and its next change."""
    if not expression:
        return UNKNOWN
    key = place_key(expression, zone, lat, lon)
    with _latest_lock:
        latest = _latest.get(key)
    if latest is not None and latest[0] <= at < latest[1]:
        return latest[2]
    parsed = _parsed(*key)
    if parsed is None:
        return UNKNOWN
    hours, until = _evaluate(parsed, at.astimezone(ZoneInfo(zone)))
    with _latest_lock:
        _latest[key] = (at, until or _NEVER, hours)
    return hours


def _evaluate(parsed: opening_hours.OpeningHours, local: datetime) -> tuple[Hours, datetime | None]:
    """The hours at ``local``, and the first change after it (None: none), before which every
    instant from ``local`` on has the same answer: the same state, and the same next change."""
    state, _ = parsed.state(local)
    first_change = parsed.next_change(local)
    if state == opening_hours.State.OPEN:
        return Hours(True, first_change, None), first_change
    undecided = state == opening_hours.State.UNKNOWN
    when: datetime | None = first_change
    for _ in range(_MAX_STEPS):
        if when is None:
            break
        if parsed.state(when)[0] == opening_hours.State.OPEN:
            return Hours(None if undecided else False, None, when), first_change
        when = parsed.next_change(when)
    return Hours(None if undecided else False, None, None), first_change


def merchant_hours(merchant: Mapping[str, Any], at: datetime) -> Hours:
    """hours_at() of a public merchant representation."""
    return hours_at(merchant["opening_hours"], merchant["timezone"], merchant["lat"], merchant["lon"], at)


def open_at(session: Session, merchant_ids: Sequence[int], at: datetime) -> set[int]:
    """The merchants among ``merchant_ids`` that are open at ``at`` (unknown hours: not open)."""
    columns = (Merchant.id, Merchant.opening_hours, Merchant.timezone, Merchant.lat, Merchant.lon)
    opened: set[int] = set()
    for start in range(0, len(merchant_ids), IN_CHUNK):
        chunk = list(merchant_ids[start : start + IN_CHUNK])
        rows = session.execute(
            select(*columns).where(Merchant.id.in_(chunk), Merchant.opening_hours.is_not(None))
        )
        for merchant_id, expression, zone, lat, lon in rows:
            if hours_at(expression, zone, lat, lon, at).open_now:
                opened.add(merchant_id)
    return opened
