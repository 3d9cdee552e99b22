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
from lbs.payments.provider import PaymentProvider
from lbs.services.deal_book import DealBook
from lbs.services.deal_reads import DealReads
from lbs.services.event_buffer import EventBuffer
from lbs.services.live_index import LiveIndex
from lbs.services.relevance import ModelHolder
from lbs.services.users import UserCache
from lbs.services.visit_histories import VisitHistories

READS = ("GET", "HEAD", "OPTIONS")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    live_index: LiveIndex
    secret_key: bytes
    rate_limits: RateLimits
    models: ModelHolder
    deal_book: DealBook
    events: EventBuffer
    users: UserCache
    # Sessions of LBS_DATABASE_READ_URL's engine; the primary's when none is set.
    read_sessions: sessionmaker[Session]
    visits: VisitHistories
    # The payment provider prepaid deals are paid through; None: this server takes no payments.
    payments: PaymentProvider | None


def runtime() -> Runtime:
    return current_app.extensions["lbs"]  # type: ignore[no-any-return]


def db_session() -> Session:
    """The request's unit of work: a write request's is committed after a successful
    response, else rolled back; a read's is never committed (nothing to commit), and is
    on the read replica when there is one (everything a read request reads, its token's
    user and the index's poll included)."""
    if "db_session" not in g:
        rt = runtime()
        session = (rt.read_sessions if request.method in READS else rt.sessions)()
        if request.method not in READS:
            # A write request takes SQLite's write lock when it begins, so it queues on the
            # busy timeout instead of failing when a read must upgrade (no-op on PostgreSQL).
            session.connection(execution_options={BEGIN_IMMEDIATE: True})
        # A read's session connects on its first statement (lbs.db.make_read_session_factory).
        g.db_session = session
    return g.db_session  # type: ignore[no-any-return]


def deal_reads() -> DealReads:
    """The request's view of deals: the process's deal book, the request's session."""
    return DealReads(db_session(), runtime().deal_book)


def utc_now() -> datetime:
    return datetime.now(UTC)
