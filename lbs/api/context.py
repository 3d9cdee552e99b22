"""What a request needs from the app: settings, the request's session, the live index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from lbs.config import Settings
from lbs.services.nearby import LiveIndex


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    live_index: LiveIndex


def runtime() -> Runtime:
    return current_app.extensions["lbs"]  # type: ignore[no-any-return]


def db_session() -> Session:
    """The request's unit of work: committed after a successful response, else rolled back."""
    if "db_session" not in g:
        g.db_session = runtime().sessions()
    return g.db_session  # type: ignore[no-any-return]


def utc_now() -> datetime:
    return datetime.now(UTC)
