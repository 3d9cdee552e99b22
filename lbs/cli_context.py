"""What every `lbs` command reads: the settings (a configuration error is a one-line exit,
not a traceback), the time, and a session whose refusals are one-line exits too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from lbs.config import Settings
from lbs.db import make_engine
from lbs.errors import LbsError


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise SystemExit(f"configuration: {exc}") from None


def now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def service_session() -> Iterator[Session]:
    """A session on the configured database, in a transaction committed at the end; a
    service's refusal (LbsError) is a one-line exit with its detail."""
    engine = make_engine(settings().database_url)
    try:
        with Session(engine) as session, session.begin():
            yield session
    except LbsError as exc:
        raise SystemExit(exc.detail) from None
