"""LBS_DATABASE_READ_URL: reads (and the index they poll) on the read database, writes on the primary.

A real replica holds the primary's rows a moment later; here the read database is a
different database holding other merchants, so that every answer says where it was read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.models import Merchant
from lbs.services.users import create_user
from tests.conftest import OPERATOR
from tests.databases import PostgresServer
from tests.factories import merchant, seed

SPOT = (60.1699, 24.9384)
NEARBY = f"/v1/nearby?lat={SPOT[0]}&lon={SPOT[1]}&radius_m=500&sort=distance"


@pytest.fixture
def read_url(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second migrated database, of the same kind as the primary."""
    if db_kind == "sqlite":
        replica = tmp_path / "read"
        replica.mkdir()
        yield request.getfixturevalue("sqlite_template").clone(replica)
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = server.create_database()
    yield server.url_of(name)
    server.drop_later(name)


@pytest.fixture
def read_engine(read_url: str) -> Iterator[Engine]:
    engine = make_engine(read_url)
    yield engine
    engine.dispose()


@pytest.fixture
def two_databases_app(make_app: Callable[..., OpenAPI], read_url: str) -> Iterator[OpenAPI]:
    app = make_app(database_read_url=read_url)
    yield app
    app.extensions["lbs"].read_sessions.kw["bind"].dispose()


def names(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.scalars(select(Merchant.name)))


def test_reads_answer_from_the_read_database_and_writes_land_in_the_primary(
    engine: Engine, read_engine: Engine, two_databases_app: OpenAPI, make_app: Callable[..., OpenAPI]
) -> None:
    (on_primary,) = seed(engine, [merchant("on the primary", *SPOT)])
    (on_read,) = seed(read_engine, [merchant("on the read database", SPOT[0] + 1e-4, SPOT[1])])
    client = two_databases_app.test_client()

    nearby = client.get(NEARBY)
    assert nearby.status_code == 200, nearby.get_data(as_text=True)
    assert [i["merchant"]["name"] for i in nearby.get_json()["items"]] == ["on the read database"]
    one = client.get(f"/v1/merchants/{on_read.id}")
    assert one.status_code == 200 and one.get_json()["name"] == "on the read database"
    assert client.get("/readyz").status_code == 200

    created = client.post(
        "/v1/merchants",
        json={"name": "written", "category": "cafe", "lat": SPOT[0], "lon": SPOT[1]},
        headers=OPERATOR,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert names(engine) == {"on the primary", "written"}
    assert names(read_engine) == {"on the read database"}
    # A write request reads on the primary too: the merchant it changes is the primary's.
    patched = client.patch(f"/v1/merchants/{on_primary.id}", json={"name": "renamed"}, headers=OPERATOR)
    assert patched.status_code == 200 and patched.get_json()["name"] == "renamed"
    # Reads still come from the read database, whose rows the writes did not touch.
    nearby = client.get(NEARBY)
    assert [i["merchant"]["name"] for i in nearby.get_json()["items"]] == ["on the read database"]

    # The same primary without a read database answers from the primary.
    alone = make_app().test_client().get(NEARBY)
    assert sorted(i["merchant"]["name"] for i in alone.get_json()["items"]) == ["renamed", "written"]


def test_events_of_reads_are_written_to_the_primary(
    engine: Engine, read_engine: Engine, two_databases_app: OpenAPI
) -> None:
    seed(read_engine, [merchant(f"read {i}", SPOT[0] + i * 1e-4, SPOT[1]) for i in range(3)])
    with Session(read_engine) as session, session.begin():
        # The user exists where reads look tokens up (a replica has the primary's users).
        _, token = create_user(session, datetime.now(UTC))
    client = two_databases_app.test_client()

    page = client.get(NEARBY.replace("&sort=distance", ""), headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200, page.get_data(as_text=True)
    assert len(page.get_json()["items"]) == 3
    two_databases_app.extensions["lbs"].events.flush()

    def impressions(e: Engine) -> int:
        with e.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(text("events")).where(text("kind = 'impression'"))
                ).scalar_one()
            )

    assert impressions(engine) == 3
    assert impressions(read_engine) == 0
