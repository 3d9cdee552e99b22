"""Fixtures: a fresh database per test on SQLite and on PostgreSQL+PostGIS, apps and clients."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from hypothesis import settings
from sqlalchemy import Engine

from lbs.app import create_app
from lbs.db import make_engine
from tests.databases import PostgresServer, SqliteTemplate, pg_admin_url

# No deadline: examples are checked for correctness, never for speed.
settings.register_profile("lbs", deadline=None, print_blob=True)
settings.load_profile("lbs")

OPERATOR_TOKEN = "lbs_op_test-operator-token"
OPERATOR_TOKEN_SHA256 = hashlib.sha256(OPERATOR_TOKEN.encode()).hexdigest()
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}

TEST_SECRET_KEY = "lbs-test-secret-key-0123456789abcdef"

DB_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgis)]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server; unreachable or without PostGIS, every test using it fails (no skips)."""
    server = PostgresServer(pg_admin_url())
    yield server
    server.close()


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own for this test."""
    if db_kind == "sqlite":
        yield request.getfixturevalue("sqlite_template").clone(tmp_path)
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = server.create_database()
    yield server.url_of(name)
    server.drop_later(name)


@pytest.fixture
def empty_database_url(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own with no schema at all (SQLite: a path not yet created)."""
    if db_kind == "sqlite":
        yield SqliteTemplate.url_for(tmp_path / "fresh.sqlite3")
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = server.create_database(from_template=False)
    yield server.url_of(name)
    server.drop_later(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., OpenAPI]]:
    """Build apps on this test's database; index refresh on every query unless overridden."""
    apps: list[OpenAPI] = []

    def build(**overrides: Any) -> OpenAPI:
        app = app_on(database_url, **overrides)
        apps.append(app)
        return app

    yield build
    for app in apps:
        close_app(app)


def app_on(database_url: str, /, **overrides: Any) -> OpenAPI:
    """An app on the database; index refresh on every query unless overridden."""
    config = {
        "database_url": database_url,
        "operator_token_sha256": OPERATOR_TOKEN_SHA256,
        "secret_key": TEST_SECRET_KEY,
        # Tests make many users from one address; test_users.py checks this limit.
        "rate_limit_new_users": "10000/minute",
        "index_refresh_s": 0.0,
        # Events of reads written right after each response; buffering has its own tests.
        "event_flush_s": 0.0,
        # Checked for correctness, not speed (tests of deadlines set their own): 5 s, the
        # service's default, was overrun by a redemption on a 2-core machine running the
        # suite beside other work.
        "request_timeout_s": 30.0,
        **overrides,
    }
    return create_app(test_config=config)


def close_app(app: OpenAPI) -> None:
    app.extensions["lbs"].events.close()
    app.extensions["lbs"].rate_limits.close()
    app.extensions["lbs"].engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app()


@pytest.fixture
def client(app: OpenAPI) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def localstripe() -> str:
    """The URL of a running localstripe (Stripe's API for the tests: tests.payments_support)."""
    from tests.payments_support import localstripe_url

    return localstripe_url()
