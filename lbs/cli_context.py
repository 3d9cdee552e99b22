"""What every `lbs` command reads: the settings (a configuration error is a one-line exit,
not a traceback), the time, the database (unreachable or not migrated: a one-line exit),
and a session whose refusals are one-line exits too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from lbs.cli_errors import require_schema
from lbs.config import Settings
from lbs.db import BEGIN_IMMEDIATE, make_engine
from lbs.errors import LbsError


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise SystemExit(f"configuration: {exc}") from None


def now() -> datetime:
    return datetime.now(UTC)


def database(*, migrated: bool = True) -> Engine:
    """The configured database, checked to be reachable and (``migrated``) at the newest
    migration."""
    url = settings().database_url
    engine = make_engine(url)
    require_schema(engine, url, migrated=migrated)
    return engine


@contextmanager
def service_session() -> Iterator[Session]:
    """A session on the configured database, in a transaction committed at the end; a
    service's refusal (LbsError) is a one-line exit with its detail."""
    engine = database()
    try:
        with Session(engine) as session, session.begin():
            # SQLite: take the write lock first, waiting for it, instead of upgrading a read
            # later, which fails at once ("database is locked") if a server wrote meanwhile.
            session.connection(execution_options={BEGIN_IMMEDIATE: True})
            yield session
    except LbsError as exc:
        raise SystemExit(exc.detail) from None
