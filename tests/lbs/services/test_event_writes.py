"""Buffered events are written in one statement per batch, NULLs included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from lbs.models import Event
from lbs.services.event_buffer import EventBuffer
from lbs.services.events import impressions, record_events, write_batch

AT = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def test_a_batch_with_and_without_deals_is_one_insert(engine: Engine) -> None:
    # Pages show some merchants with a deal and some without: rows alternate between a
    # deal_id and NULL. Leaving the NULL out split such a batch into one INSERT per run of
    # alike rows (3,400 rows: 2,380 statements, 1.2 s of a worker's time).
    shown = [(m, m + 1000 if m % 3 == 0 else None) for m in range(1, 61)]
    rows = impressions(7, AT, (60.17, 24.94), shown, "nearby")
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with Session(engine) as session:
            record_events(session, rows)
            session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1 and "INTO events" in inserts[0]
    with Session(engine) as session:
        stored = session.execute(select(Event.merchant_id, Event.deal_id).order_by(Event.merchant_id)).all()
    assert [tuple(r) for r in stored] == shown


def test_the_buffer_batch_stores_what_record_events_stores(engine: Engine) -> None:
    shown = [(m, m + 1000 if m % 2 else None) for m in range(1, 41)]
    rows = impressions(9, AT, (60.17, 24.94), shown, "nearby")
    with Session(engine) as session:
        write_batch(session, rows)
        record_events(session, rows)
        session.commit()
    columns = (Event.kind, Event.source, Event.user_id, Event.merchant_id, Event.deal_id, Event.voucher_id)
    more = (Event.h3_cell, Event.client_event_id, Event.occurred_at, Event.received_at)
    with Session(engine) as session:
        stored = session.execute(select(*columns, *more).order_by(Event.id)).all()
    expected = [tuple(row[c.key] for c in (*columns, *more)) for row in rows]
    assert [tuple(r) for r in stored] == expected * 2  # the batch's rows, then record_events' the same


def test_the_buffer_batch_refuses_naive_instants(engine: Engine) -> None:
    rows = impressions(9, AT.replace(tzinfo=None), (60.17, 24.94), [(1, None)], "nearby")
    with Session(engine) as session, pytest.raises(StatementError, match="naive"):
        write_batch(session, rows)
        session.flush()


@pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgis)])
def test_a_batch_whose_connection_was_lost_stays_pending(database_url: str) -> None:
    # One pooled connection, not pinged on checkout: the buffer's next COPY meets it dead.
    lost = create_engine(database_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    try:
        with lost.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with create_engine(database_url).connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        buffer = EventBuffer(sessionmaker(lost), flush_s=3600, max_rows=1000)
        buffer.add(impressions(9, AT, (60.17, 24.94), [(1, None), (2, 5)], "nearby"))
        assert buffer.flush() == 0  # a database error: kept, not lost
        assert buffer.pending == 2
        assert buffer.flush() == 2  # a new connection
        with Session(lost) as session:
            assert session.scalar(select(func.count()).select_from(Event)) == 2
        buffer.close()
    finally:
        lost.dispose()
