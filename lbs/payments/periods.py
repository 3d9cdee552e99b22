"""Settlement periods: UTC weeks from Monday 00:00, named as ISO weeks (2026-W49)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

WEEK = timedelta(days=7)


def period_start(at: datetime) -> datetime:
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def period_name(start: datetime) -> str:
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


def parse_period(name: str) -> datetime:
    """The start of a period named 2026-W49; ValueError for anything else."""
    start = datetime.strptime(name + "-1", "%G-W%V-%u").replace(tzinfo=UTC)
    if period_name(start) != name:
        raise ValueError(f"{name!r} is not an ISO week (YYYY-Www)")
    return start
