"""Rate-limit counters in the service's own database: a `limits` storage for fixed windows.

The default store (LBS_RATE_LIMIT_STORAGE=database). Every worker of every host counts in
one table, so a limit is the documented number however many workers answer; `memory://`
counted per worker and let a caller have W times each limit. One statement per hit, on a
connection of its own and committed at once, so that an attempt counts whether or not the
request that made it succeeds: an upsert that starts a new window when the old one has
ended, and returns the count. Ended windows are deleted now and then by the hits
themselves (about one hit in PRUNE_EVERY). Redis (`redis://…`) does the same without a
write to the database, for hosts that have one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from limits.storage import MemoryStorage, Storage
from sqlalchemy import Engine, case, delete, select, text
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateTable

from lbs.db import dialect_insert, make_engine
from lbs.deadline import expired
from lbs.models import RateLimitCounter

PRUNE_EVERY = 1000
MAKE_TABLE_TRIES = 50
T = TypeVar("T")


class DatabaseStorage(Storage):
    STORAGE_SCHEME = None  # made with an engine (DatabaseStorage.beside), not from a URI

    def __init__(self, engine: Engine, wrap_exceptions: bool = True, make_table: bool = False) -> None:
        super().__init__(None, wrap_exceptions=wrap_exceptions)
        self.engine = engine
        self._insert = dialect_insert(engine)
        self._table_made = not make_table

    @classmethod
    def beside(cls, engine: Engine, request_timeout_s: float, pool_size: int) -> Storage:
        """Counters for the service whose database is ``engine``'s, on connections of their
        own: a request counts while it holds its own connection, and with one pool the
        requests would hold every connection and wait for another (``pool_size``: one per
        serving thread). On PostgreSQL, in that database. On SQLite, in a file of their own
        beside it (`…-ratelimits`): a write request holds SQLite's one write lock from its
        start, and a count in the same file would wait for it; in the same transaction, a
        failed attempt (a wrong voucher code) would roll its count back. An in-memory
        database counts in this process's memory."""
        url = engine.url.render_as_string(hide_password=False)
        if engine.dialect.name != "sqlite":
            return cls(make_engine(url, request_timeout_s=request_timeout_s, pool_size=pool_size))
        database = engine.url.database
        if not database or database == ":memory:":
            return MemoryStorage()
        url = engine.url.set(database=f"{database}-ratelimits").render_as_string(hide_password=False)
        counters = make_engine(url, request_timeout_s=request_timeout_s, poolclass=NullPool)
        return cls(counters, make_table=True)

    def _make_table(self) -> None:
        """The SQLite file's table, made on first use (not at start: every worker starts at
        once, and a new SQLite file refuses concurrent connections while one of them switches
        it to WAL, with no busy wait). Retried for a few seconds while the file is locked."""
        if self._table_made:
            return
        create = CreateTable(RateLimitCounter.__table__, if_not_exists=True)  # type: ignore[arg-type]
        for attempt in range(MAKE_TABLE_TRIES):
            try:
                with self.engine.begin() as connection:
                    connection.execute(create)
                break
            except OperationalError as error:
                if "locked" not in str(error.orig) or attempt == MAKE_TABLE_TRIES - 1:
                    raise
                time.sleep(0.1)
        self._table_made = True

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def close(self) -> None:
        self.engine.dispose()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self._make_table()
        now = time.time()
        table = RateLimitCounter.__table__
        ended = table.c.expires_at <= now
        upsert = self._insert(table).values(key=key, expires_at=now + expiry, hits=amount)
        upsert = upsert.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "hits": case((ended, amount), else_=table.c.hits + amount),
                "expires_at": case((ended, now + expiry), else_=table.c.expires_at),
            },
        ).returning(table.c.hits)

        def count() -> int:
            with self.engine.begin() as connection:
                hits = int(connection.execute(upsert).scalar_one())
                if random.randrange(PRUNE_EVERY) == 0:
                    connection.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at <= now))
            return hits

        return self._once_more_if_dropped(count)

    def _row(self, key: str) -> tuple[float, int] | None:
        self._make_table()
        query = select(RateLimitCounter.expires_at, RateLimitCounter.hits).where(RateLimitCounter.key == key)

        def read() -> Any:
            with self.engine.connect() as connection:
                return connection.execute(query).first()

        row = self._once_more_if_dropped(read)
        if row is None or row[0] <= time.time():
            return None
        return float(row[0]), int(row[1])

    @staticmethod
    def _once_more_if_dropped(work: Callable[[], T]) -> T:
        """``work``, again on a new connection if the pooled one had died (the server
        restarted) and the request has time left: SQLAlchemy has then dropped the pool's
        connections, and a count should not fail a request for it. (At worst an attempt
        whose reply was lost counts twice.) A connection the watchdog cut is past the
        deadline: no second try."""
        try:
            return work()
        except DBAPIError as error:
            if not error.connection_invalidated or expired():  # no time left for another try
                raise
            return work()

    def get(self, key: str) -> int:
        row = self._row(key)
        return 0 if row is None else row[1]

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return time.time() if row is None else row[0]

    def check(self) -> bool:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True

    def reset(self) -> int | None:
        self._make_table()
        with self.engine.begin() as connection:
            return int(connection.execute(delete(RateLimitCounter)).rowcount)

    def clear(self, key: str) -> None:
        self._make_table()
        with self.engine.begin() as connection:
            connection.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))
