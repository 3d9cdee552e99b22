"""Engine and session factory per app: SQLite by default, PostgreSQL + PostGIS by URL."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from lbs.db_watchdog import watch_connections
from lbs.deadline import DeadlineExceeded, expired, time_left_s

# Connection execution option: on SQLite, begin with BEGIN IMMEDIATE (take the write lock).
BEGIN_IMMEDIATE = "lbs_begin_immediate"
# Ids per IN (...) query when a list may be long: bound parameters stay well under SQLite's limit.
IN_CHUNK = 5000
# A pooled PostgreSQL connection is replaced after this long, so one the server or a proxy
# dropped while idle is not kept forever; one that died meanwhile fails its request with a
# 503 and SQLAlchemy then replaces every connection of the pool (no ping per checkout).
POOL_RECYCLE_S = 1800
# How long SQLite waits for another connection's write lock when no deadline bounds it.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# SQLite calls the progress handler (which stops a statement past its deadline) every this
# many virtual machine steps: about a millisecond of work.
SQLITE_PROGRESS_STEPS = 10_000
# A statement may run past its request's deadline by this share of the timeout at most: the
# database's bound is moved only when it would overshoot more. On PostgreSQL a move is a SET,
# and a RESET at check-in: two round trips. Half, not a tenth, there: deadlines count from
# arrival, so under overload most requests start late, and at a tenth nearly every one paid
# the two round trips (19 % of a worker's request time at 1M merchants), deepening the
# overload. SQLite's busy timeout is a setting in the process: moving it costs nothing.
DEADLINE_SLACK_SHARE = {"postgresql": 0.5, "sqlite": 0.1}
SQLITE_READONLY = 8  # the primary result code; extended codes add bits above 0xFF


def make_engine(url: str, *, request_timeout_s: float = 0.0, pool_size: int = 5, **kwargs: Any) -> Engine:
    """The engine of a database URL. With ``request_timeout_s`` (the serving app's), no statement
    outlives its request's deadline (lbs.deadline), and connecting and a pool checkout are
    bounded by the timeout; ``pool_size`` connections are kept, one per serving thread."""
    timeout_ms = math.ceil(request_timeout_s * 1000)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **kwargs)
        _make_sqlite_transactional(engine)
        if request_timeout_s > 0:
            _bound_sqlite_by_deadlines(engine, math.ceil(DEADLINE_SLACK_SHARE["sqlite"] * timeout_ms))
        return engine
    # prepare_threshold=None: psycopg would otherwise switch to server-side prepared
    # statements with generic plans, which hurt PostGIS distance queries.
    # hide_parameters: errors are logged, and parameters can hold a user's position.
    connect_args: dict[str, Any] = {"prepare_threshold": None}
    pool: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size, "pool_recycle": POOL_RECYCLE_S}
    if timeout_ms > 0:
        # The connection's own default: a statement started early in a request is bounded
        # with no round trip of ours; later ones get the time left (_bound_by_deadlines).
        options = make_url(url).query.get("options", "")
        connect_args["options"] = f"{options} -c statement_timeout={timeout_ms}".strip()
        connect_args["connect_timeout"] = max(2, math.ceil(request_timeout_s))  # libpq: whole seconds, >= 2
        pool["pool_timeout"] = request_timeout_s
    engine = create_engine(url, connect_args=connect_args, hide_parameters=True, **pool, **kwargs)
    if timeout_ms > 0:
        slack_ms = math.ceil(DEADLINE_SLACK_SHARE["postgresql"] * timeout_ms)
        _bound_by_deadlines(engine, timeout_ms, slack_ms, _lower_statement_timeout, _reset_statement_timeout)
        watch_connections(engine)  # a server that stops answering enforces no statement_timeout
    return engine


def unbounded_statements(session: Session) -> None:
    """Lift the statement timeout for the rest of the session's transaction (PostgreSQL): the
    loads that every later request depends on (the nearby index, the deal book) must finish."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL statement_timeout = 0"))


def _lower_statement_timeout(cursor: Any, ms: int) -> None:
    # On the connection, not the cursor, which may be a server-side one (stream_results).
    # Session-level: reads run in autocommit, where SET LOCAL would not last.
    cursor.connection.execute(f"SET statement_timeout = {ms}")


def _reset_statement_timeout(dbapi_connection: Any) -> None:
    # Back to the connection's startup default; in autocommit, so that no transaction is left open.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute("RESET statement_timeout")
    finally:
        dbapi_connection.autocommit = autocommit


def _lower_busy_timeout(cursor: Any, ms: int) -> None:
    cursor.connection.execute(f"PRAGMA busy_timeout = {ms}")


def _reset_busy_timeout(dbapi_connection: Any) -> None:
    dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def _bound_by_deadlines(
    engine: Engine,
    default_ms: int,
    slack_ms: int,
    lower: Callable[[Any, int], None],
    reset: Callable[[Any], None],
) -> None:
    """Before each statement of a request: stop if its deadline has passed, else make sure the
    database's bound on the statement (PostgreSQL's statement_timeout, SQLite's busy timeout)
    ends it by the deadline, give or take the slack. Each connection starts at ``default_ms``
    and is reset to it when returned to the pool, so a bound lowered for one request never
    ends another's statement early."""
    key = "lbs_lowered_bound_ms"

    @event.listens_for(engine, "before_cursor_execute")
    def _bound(conn: Any, cursor: Any, _statement: Any, _parameters: Any, _context: Any, _many: bool) -> None:
        left_s = time_left_s()
        if left_s is None:
            return
        if left_s <= 0:
            raise DeadlineExceeded()
        left_ms = math.ceil(left_s * 1000)
        # A SET inside a transaction that is then rolled back reverts to the default while
        # conn.info still says lowered: that request's later statements may overrun by more
        # than the slack; the reset at check-in puts every connection back in step.
        if conn.info.get(key, default_ms) > left_ms + slack_ms:
            lower(cursor, left_ms)
            conn.info[key] = left_ms

    @event.listens_for(engine, "checkin")
    def _reset(dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(key, None) is None or dbapi_connection is None:
            return
        try:
            reset(dbapi_connection)
        except Exception as exc:  # a connection that cannot be reset is not reused
            record.invalidate(exc)


def _make_sqlite_transactional(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, decide where transactions begin (the documented recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @event.listens_for(engine, "handle_error")
    def _read_only_is_a_disconnect(context: ExceptionContext) -> None:
        # A file SQLite could only open read-only (a read-only volume, the wrong owner)
        # stays read-only for every connection of the process, which share one open file
        # per inode, even once it is writable again. As a "disconnect" the error makes the
        # pool replace its connections, so that writes resume without a restart.
        if getattr(context.original_exception, "sqlite_errorcode", 0) & 0xFF == SQLITE_READONLY:
            context.is_disconnect = True


def _bound_sqlite_by_deadlines(engine: Engine, slack_ms: int) -> None:
    """SQLite has no statement timeout: a progress handler stops a statement once its request's
    deadline has passed, and the busy timeout (waiting for the write lock) ends by it."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_progress_handler(expired, SQLITE_PROGRESS_STEPS)

    _bound_by_deadlines(engine, SQLITE_BUSY_TIMEOUT_MS, slack_ms, _lower_busy_timeout, _reset_busy_timeout)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for read requests. On PostgreSQL their statements run without BEGIN and COMMIT
    round trips (autocommit; each still sees a committed snapshot, READ COMMITTED as inside a
    transaction), and a session takes a pooled connection only when it first runs one: a page
    answered from the process's own state takes none."""
    if not is_postgresql(engine):
        return make_session_factory(engine)
    return sessionmaker(
        bind=engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        info={_TRANSACTIONAL_BIND: engine},
    )


_TRANSACTIONAL_BIND = "lbs_transactional_bind"


def with_transactions(session: Session) -> Engine | Connection:
    """What to bind a session of one's own to, beside ``session``, for work that needs a
    transaction (rows streamed through a server-side cursor, SET LOCAL): the session's own
    bind, or, for a read session, its engine without autocommit."""
    bind: Engine | Connection = session.info.get(_TRANSACTIONAL_BIND) or session.get_bind()
    return bind


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def dialect_insert(bind: Session | Engine) -> Any:
    """INSERT with ON CONFLICT for the database of a session or an engine (PostgreSQL or SQLite)."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
