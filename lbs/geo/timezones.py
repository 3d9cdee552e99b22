"""The one time-zone lookup: IANA zone of a position (timezonefinder, offline)."""

from __future__ import annotations

from functools import lru_cache

from timezonefinder import TimezoneFinder


@lru_cache(maxsize=1)
def _finder() -> TimezoneFinder:
    return TimezoneFinder()


def timezone_at(lat: float, lng: float) -> str:
    """IANA time zone at a point; the sea gets its nautical Etc/GMT±N zone."""
    name = _finder().timezone_at(lat=lat, lng=lng)
    return name or "UTC"
