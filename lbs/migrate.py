"""Run the Alembic migrations against a database URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _run(engine: Engine, step: Callable[[Config, str], None], target: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        step(config, target)


def upgrade(engine: Engine, target: str = "head") -> None:
    _run(engine, command.upgrade, target)


def downgrade(engine: Engine, target: str = "base") -> None:
    """Undo migrations down to ``target`` ("base": no tables left)."""
    _run(engine, command.downgrade, target)
