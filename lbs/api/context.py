"""What a request needs from the app: settings, the request's session, the live index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from lbs.api.ratelimits import RateLimits
from lbs.config import Settings
from lbs.db import BEGIN_IMMEDIATE
from lbs.services.nearby import LiveIndex
from lbs.services.relevance import ModelHolder


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    live_index: LiveIndex
    secret_key: bytes
    rate_limits: RateLimits
    models: ModelHolder


def runtime() -> Runtime:
    return current_app.extensions["lbs"]  # type: ignore[no-any-return]


def db_session() -> Session:
    """The request's unit of work: committed after a successful response, else rolled back."""
    if "db_session" not in g:
        session = runtime().sessions()
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # A write request takes SQLite's write lock when it begins, so it queues on the
            # busy timeout instead of failing when a read must upgrade (no-op on PostgreSQL).
            session.connection(execution_options={BEGIN_IMMEDIATE: True})
        g.db_session = session
    return g.db_session  # type: ignore[no-any-return]


def utc_now() -> datetime:
    return datetime.now(UTC)
