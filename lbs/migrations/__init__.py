"""Alembic migrations of the lbs schema; run them with `lbs db upgrade`."""
