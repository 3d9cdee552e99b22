"""Engine and session factory per app: SQLite by default, PostgreSQL + PostGIS by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

# Connection execution option: on SQLite, begin with BEGIN IMMEDIATE (take the write lock).
BEGIN_IMMEDIATE = "lbs_begin_immediate"
# Ids per IN (...) query when a list may be long: bound parameters stay well under SQLite's limit.
IN_CHUNK = 5000


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **kwargs)
        _make_sqlite_transactional(engine)
        return engine
    # prepare_threshold=None: psycopg would otherwise switch to server-side prepared
    # statements with generic plans, which hurt PostGIS distance queries.
    # hide_parameters: errors are logged, and parameters can hold a user's position.
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"prepare_threshold": None},
        hide_parameters=True,
        **kwargs,
    )


def _make_sqlite_transactional(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, decide where transactions begin (the documented recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def dialect_insert(session: Session) -> Any:
    """INSERT with ON CONFLICT for the session's database (PostgreSQL or SQLite)."""
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
