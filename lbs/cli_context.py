"""What every `lbs` command reads: the settings (a configuration error is a one-line exit,
not a traceback) and the time."""

from __future__ import annotations

from datetime import UTC, datetime

from lbs.config import Settings


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise SystemExit(f"configuration: {exc}") from None


def now() -> datetime:
    return datetime.now(UTC)
