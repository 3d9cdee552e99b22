"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from lbs.models import Base

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
