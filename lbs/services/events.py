"""The append-only event log: server-side rows, client batches (deduplicated), coarse positions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import h3
from pydantic import ConfigDict, Field
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session

from lbs.db import dialect_insert
from lbs.errors import InvalidParameter
from lbs.models import Deal, Event, Merchant, UTCDateTime
from lbs.models.events import SURFACES
from lbs.services.deal_schedule import Instant
from lbs.services.merchants import Latitude, Longitude
from lbs.services.request_bodies import JsonBody
from lbs.text import PlainText

# Resolution 9 cells average 0.105 km² (edge ~200 m): a neighbourhood, not a doorway.
EVENT_CELL_RESOLUTION = 9
MAX_AGE = timedelta(days=30)
MAX_AHEAD = timedelta(minutes=5)


def coarse_cell(lat: float, lon: float) -> int:
    """The only form in which a position reaches the event log."""
    return int(h3.str_to_int(h3.latlng_to_cell(lat, lon, EVENT_CELL_RESOLUTION)))


def server_event(
    kind: str,
    occurred_at: datetime,
    *,
    user_id: int | None,
    merchant_id: int | None,
    deal_id: int | None = None,
    voucher_id: int | None = None,
    h3_cell: int | None = None,
    surface: str | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "source": "server",
        "user_id": user_id,
        "merchant_id": merchant_id,
        "deal_id": deal_id,
        "voucher_id": voucher_id,
        "h3_cell": h3_cell,
        "client_event_id": None,
        "occurred_at": occurred_at,
        "received_at": occurred_at,
        "surface": surface,
    }


def impressions(
    user_id: int,
    at: datetime,
    position: tuple[float, float] | None,
    shown: Sequence[tuple[int, int | None]],
    surface: str,
) -> list[dict[str, Any]]:
    """A results page shown to a user on ``surface``: one row per (merchant, deal shown with
    it), at the coarse cell of where the user stood (``position``, lat and lon) if known."""
    cell = None if position is None else coarse_cell(*position)
    return [
        server_event(
            "impression", at, user_id=user_id, merchant_id=m, deal_id=d, h3_cell=cell, surface=surface
        )
        for m, d in shown
    ]


def click(user_id: int, at: datetime, merchant_id: int, deal_id: int | None = None) -> dict[str, Any]:
    """A user read a merchant's page (merchant_page) or a deal's (deal_page)."""
    surface = "merchant_page" if deal_id is None else "deal_page"
    return server_event(
        "click", at, user_id=user_id, merchant_id=merchant_id, deal_id=deal_id, surface=surface
    )


def record_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert server events (server_event's rows) in the session's transaction: one statement.

    render_nulls: the ORM's bulk insert otherwise leaves out the columns that are None and
    splits the rows into one INSERT per run of rows alike (pages mix merchants with and
    without a deal: 3,400 impressions took 2,380 statements).
    """
    if rows:
        session.execute(insert(Event).execution_options(render_nulls=True), list(rows))


_COPIED = tuple(server_event("", datetime.min, user_id=None, merchant_id=None))
_INSTANTS = ("occurred_at", "received_at")


def write_batch(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """record_events() for a large batch (the event buffer's): on PostgreSQL by COPY, about a
    third of the worker's CPU time of the ORM's insert (3,400 rows: ~50 ms against ~140)."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        record_events(session, rows)
        return
    statement = f"COPY events ({', '.join(_COPIED)}) FROM STDIN"
    connection = session.connection()
    # The instants go through the columns' own type, as on the ORM's path (aware, in UTC).
    to_utc, dialect = UTCDateTime().process_bind_param, connection.dialect
    try:
        values = [[to_utc(row[c], dialect) if c in _INSTANTS else row[c] for c in _COPIED] for row in rows]
    except ValueError as exc:
        raise StatementError(str(exc), statement, None, exc) from exc
    raw = connection.connection.driver_connection
    assert raw is not None
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row_values in values:
                copy.write_row(row_values)
    except connection.dialect.loaded_dbapi.Error as exc:
        # Raised as SQLAlchemy raises the driver's errors, so that callers (the event buffer
        # keeps the batch and retries) see a database error, and a lost connection is dropped.
        if raw.closed:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, connection.dialect.loaded_dbapi.Error, connection_invalidated=raw.closed
        ) from exc


class ClientEvent(JsonBody):
    """One event a client saw happen; its id makes resending it harmless."""

    model_config = ConfigDict(extra="forbid")

    id: PlainText = Field(min_length=1, max_length=64, description="the client's id for this event")
    kind: Literal["impression", "click", "visit"]
    merchant_id: int = Field(ge=1, le=2**63 - 1)
    deal_id: int | None = Field(None, ge=1, le=2**63 - 1)
    occurred_at: Instant
    lat: Latitude | None = None
    lon: Longitude | None = None
    surface: Literal[SURFACES] | None = Field(  # type: ignore[valid-type]
        None, description="where the user saw or read it: " + ", ".join(SURFACES)
    )


class ClientEvents(JsonBody):
    model_config = ConfigDict(extra="forbid")

    events: list[ClientEvent] = Field(min_length=1, max_length=100)


def _check(session: Session, events: Sequence[ClientEvent], now: datetime) -> None:
    merchant_ids = {e.merchant_id for e in events}
    known_merchants = set(session.scalars(select(Merchant.id).where(Merchant.id.in_(merchant_ids))))
    deal_ids = {e.deal_id for e in events if e.deal_id is not None}
    deal_merchant = dict(
        session.execute(
            select(Deal.id, Deal.merchant_id).where(Deal.id.in_(deal_ids), Deal.status != "draft")
        ).all()
    )
    for i, event in enumerate(events):
        where = f"events[{i}]"
        if event.merchant_id not in known_merchants:
            raise InvalidParameter(
                f"{where}.merchant_id", f"{where}.merchant_id: no merchant {event.merchant_id}"
            )
        if event.deal_id is not None and deal_merchant.get(event.deal_id) != event.merchant_id:
            raise InvalidParameter(
                f"{where}.deal_id",
                f"{where}.deal_id: merchant {event.merchant_id} has no deal {event.deal_id}",
            )
        if not now - MAX_AGE <= event.occurred_at <= now + MAX_AHEAD:
            raise InvalidParameter(
                f"{where}.occurred_at",
                f"{where}.occurred_at must be within the last 30 days and at most 5 minutes ahead",
            )
        if (event.lat is None) != (event.lon is None):
            raise InvalidParameter(f"{where}.lat", f"{where}: give both lat and lon, or neither")


def ingest_client_events(
    session: Session, user_id: int, events: Sequence[ClientEvent], now: datetime
) -> tuple[int, int]:
    """Store a client's batch; returns (accepted, duplicates). Nothing is stored if any event is bad."""
    _check(session, events, now)
    fresh: dict[str, ClientEvent] = {}
    for event in events:
        fresh.setdefault(event.id, event)
    seen = set(
        session.scalars(
            select(Event.client_event_id).where(Event.user_id == user_id, Event.client_event_id.in_(fresh))
        )
    )
    rows = [
        {
            "kind": e.kind,
            "source": "client",
            "user_id": user_id,
            "merchant_id": e.merchant_id,
            "deal_id": e.deal_id,
            "voucher_id": None,
            "h3_cell": None if e.lat is None or e.lon is None else coarse_cell(e.lat, e.lon),
            "client_event_id": e.id,
            "occurred_at": e.occurred_at,
            "received_at": now,
            "surface": e.surface,
        }
        for e in fresh.values()
        if e.id not in seen
    ]
    if rows:
        # A concurrent resend of the same batch is absorbed by the unique (user, client id).
        session.execute(dialect_insert(session)(Event).on_conflict_do_nothing(), rows)
    return len(rows), len(events) - len(rows)


MERCHANT_FEED_KINDS = ("click", "claim", "redemption")


def merchant_feed(session: Session, merchant_id: int, after_id: int, limit: int) -> list[dict[str, Any]]:
    """A merchant's clicks, claims and redemptions in log order, after ``after_id``.

    Who did it is left out (a merchant learns what happened to its deals, not who the
    users are); impressions are left out too, being volume rather than news.
    """
    rows = session.execute(
        select(Event.id, Event.kind, Event.deal_id, Event.voucher_id, Event.occurred_at)
        .where(Event.merchant_id == merchant_id, Event.kind.in_(MERCHANT_FEED_KINDS), Event.id > after_id)
        .order_by(Event.id)
        .limit(limit)
    ).all()
    return [
        {"id": r.id, "kind": r.kind, "deal_id": r.deal_id, "voucher_id": r.voucher_id,
         "occurred_at": r.occurred_at.isoformat()}
        for r in rows
    ]  # fmt: skip
