"""Apps that take payments through localstripe (tests/payments_support.py starts it)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from tests.conftest import app_on, close_app
from tests.databases import PostgresServer, SqliteTemplate

WEBHOOK_SECRET = "whsec_lbs_test"
SECRET_KEY = "sk_test_lbs"


@pytest.fixture
def pay_config(localstripe: str) -> dict[str, Any]:
    return {
        "payment_provider": "stripe",
        "stripe_secret_key": SECRET_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": localstripe,
    }


@pytest.fixture
def pay_app(make_app: Callable[..., OpenAPI], pay_config: dict[str, Any]) -> OpenAPI:
    return make_app(**pay_config)


@pytest.fixture
def pay_client(pay_app: OpenAPI) -> FlaskClient:
    return pay_app.test_client()


@pytest.fixture
def fresh_pay_app(
    db_kind: str, request: pytest.FixtureRequest, pay_config: dict[str, Any], tmp_path: Path
) -> Callable[[], AbstractContextManager[OpenAPI]]:
    """A paying app on a database of its own each time it is entered: for hypothesis, whose
    examples share the test's function-scoped fixtures."""
    server: PostgresServer | None = None
    template: SqliteTemplate | None = None
    if db_kind == "sqlite":
        template = request.getfixturevalue("sqlite_template")
    else:
        server = request.getfixturevalue("pg_server")

    @contextmanager
    def build() -> Iterator[OpenAPI]:
        name = None
        if template is not None:
            url = template.clone(Path(tempfile.mkdtemp(dir=tmp_path)))
        else:
            assert server is not None
            name = server.create_database()
            url = server.url_of(name)
        app = app_on(url, **pay_config)
        try:
            yield app
        finally:
            close_app(app)
            if server is not None and name is not None:
                server.drop_later(name)

    return build
