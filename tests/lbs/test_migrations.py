"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from lbs import migrate
from lbs.db import make_engine
from lbs.models import Base
from tests.factories import this_database

# PostgreSQL only, on purpose: PostGIS's own table, and the generated geography column
# with its GiST index, which the models leave unmapped (see lbs.models.merchants).
POSTGIS_ONLY = {"spatial_ref_sys", "geog", "ix_merchants_geog", "alembic_version"}


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return name not in POSTGIS_ONLY


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": _ours, "compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_each_database_gets_an_id_and_one_migrated_before_gets_it_on_upgrade(
    empty_database_url: str, database_url: str
) -> None:
    engine = make_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0007")  # a database from before models were bound
        assert "database_identity" not in inspect(engine).get_table_names()
        migrate.upgrade(engine)
        first = this_database(engine)
        migrate.upgrade(engine)  # again: the id stays
        assert this_database(engine) == first
    finally:
        engine.dispose()
    other = make_engine(database_url)
    try:
        assert str(uuid.UUID(first)) == first and this_database(other) != first
    finally:
        other.dispose()
