"""Databases a benchmark owns: made, reset and migrated by it, never one it did not make."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from lbs import migrate
from lbs.db import make_engine


def libpq_url(url: str, database: str | None = None) -> str:
    """The SQLAlchemy URL as psycopg takes it, optionally for another database on the server."""
    u = make_url(url).set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


def _refuse_foreign(tables: set[str], marker_table: str, where: str) -> None:
    if tables and marker_table not in tables:
        raise SystemExit(f"{where} holds tables but was not made by this benchmark; refusing to reset it")


def reset_database(url: str, marker_table: str) -> None:
    """Drop and re-create the benchmark's database, migrated, with its marker table.

    A database holding tables but not ``marker_table`` is someone else's: refused.
    """
    if make_url(url).get_backend_name() == "sqlite":
        path = Path(make_url(url).database or "")
        if not path.name or str(path) == ":memory:":
            raise SystemExit("--database-url: a SQLite file is needed")
        if path.exists():
            with sqlite3.connect(path) as conn:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            _refuse_foreign(tables, marker_table, str(path))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        name = make_url(url).database
        if not name:
            raise SystemExit("--database-url must name a database")
        with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                listed = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                _refuse_foreign({r[0] for r in listed}, marker_table, f"database {name}")
        with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {marker_table} (created_at VARCHAR(40))"))
            conn.execute(
                text(f"INSERT INTO {marker_table} VALUES (:t)"), {"t": datetime.now(UTC).isoformat()}
            )
    finally:
        engine.dispose()
