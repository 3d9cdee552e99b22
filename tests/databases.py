"""Throwaway databases for tests: one per test, cloned from a migrated per-session template.

SQLite: the template is a migrated file; each test gets a copy of it.
PostgreSQL: the template is a migrated database (so PostGIS is created once); each test
gets ``CREATE DATABASE ... TEMPLATE``. Dropping a PostgreSQL database forces a
checkpoint, which costs about a second on a disk that really syncs, so drops happen on a
few background threads while later tests run, and the session waits for them at the end.
"""

from __future__ import annotations

import itertools
import os
import queue
import shutil
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lbs import migrate
from lbs.db import make_engine

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_ADMIN_URL_ENV = "LBS_TEST_PG_URL"
_DROP_WAIT_S = 600.0
_DROPPERS = 3


def migrate_url(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


class SqliteTemplate:
    """A migrated SQLite file that tests copy."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.sqlite3"
        migrate_url(self.url_for(self.path))

    @staticmethod
    def url_for(path: Path) -> str:
        return f"sqlite:///{path}"

    def clone(self, directory: Path) -> str:
        target = directory / "lbs.sqlite3"
        shutil.copyfile(self.path, target)
        return self.url_for(target)


class PostgresServer:
    """The PostgreSQL server under test: a migrated template and per-test clones of it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._prefix = f"lbs_test_{os.getpid()}"
        self._names = itertools.count()
        self._admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        self._check_reachable()
        self.template = f"{self._prefix}_template"
        self._drops: queue.Queue[str | None] = queue.Queue()
        self.drop_errors: list[str] = []
        # Concurrent drops share the checkpoints they force.
        self._droppers = [
            threading.Thread(target=self._drop_worker, name=f"pg-dropper-{n}", daemon=True)
            for n in range(_DROPPERS)
        ]
        for thread in self._droppers:
            thread.start()
        self._execute(f'DROP DATABASE IF EXISTS "{self.template}"')
        self._execute(f'CREATE DATABASE "{self.template}"')
        migrate_url(self.url_of(self.template))

    def _check_reachable(self) -> None:
        try:
            with self._admin.connect() as connection:
                has_postgis = connection.execute(
                    sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")
                ).scalar_one()
        except sa.exc.OperationalError as exc:
            raise RuntimeError(
                f"PostgreSQL is unreachable at {self._safe_url()} ({exc.orig}); start it or set "
                f"{PG_ADMIN_URL_ENV} to a superuser URL. PostgreSQL tests fail rather than skip."
            ) from exc
        if not has_postgis:
            raise RuntimeError(
                f"PostGIS is not installed on the server at {self._safe_url()} "
                "(apt-get install postgresql-15-postgis-3). PostgreSQL tests fail rather than skip."
            )

    def _safe_url(self) -> str:
        return make_url(self.admin_url).render_as_string(hide_password=True)

    def _execute(self, sql: str) -> None:
        with self._admin.connect() as connection:
            connection.exec_driver_sql(sql)

    def url_of(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def create_database(self, *, from_template: bool = True) -> str:
        """A new database: a migrated clone of the template, or an empty one."""
        name = f"{self._prefix}_{next(self._names)}"
        template = f' TEMPLATE "{self.template}"' if from_template else ""
        self._execute(f'CREATE DATABASE "{name}"{template}')
        return name

    def drop_later(self, name: str) -> None:
        self._drops.put(name)

    def _drop(self, name: str) -> None:
        try:
            # FORCE ends connections a test may have leaked (a killed server, a CLI engine).
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except sa.exc.DBAPIError as exc:
            self.drop_errors.append(f"{name}: {exc.orig}")

    def _drop_worker(self) -> None:
        while (name := self._drops.get()) is not None:
            self._drop(name)

    def close(self) -> None:
        """Drop what is left, then the template; raise if a drop failed."""
        for _ in self._droppers:
            self._drops.put(None)
        deadline = time.monotonic() + _DROP_WAIT_S
        for thread in self._droppers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._drop(self.template)
        self._admin.dispose()
        if any(t.is_alive() for t in self._droppers) or self.drop_errors:
            raise RuntimeError(f"test databases left behind: {self.drop_errors or 'drops still running'}")


def pg_admin_url() -> str:
    return os.environ.get(PG_ADMIN_URL_ENV, DEFAULT_PG_ADMIN_URL)
