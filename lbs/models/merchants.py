"""Merchants, their API keys and the change-log counter."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geography
from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, SmallInteger, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import column, table

from lbs.models.base import Base, BigId, UTCDateTime


class Merchant(Base):
    __tablename__ = "merchants"
    # has_deal searches join live deals to merchants inside a lat/lon box (migration 0002).
    __table_args__ = (
        Index("ix_merchants_lat_lon", "lat", "lon"),
        Index("ux_merchants_source_ref", "source_ref", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(40))
    website: Mapped[str | None] = mapped_column(String(500))
    price_level: Mapped[int | None] = mapped_column(SmallInteger)
    opening_hours: Mapped[str | None] = mapped_column(Text)
    # Words it is found by besides name and category (`q`): ["pizza", "vegan"] (migration 0009).
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Set when the operator set the status (moderation): the merchant's key cannot change it.
    status_by_operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What it was imported from, if anything ("osm:node/123", "osm:way/45"): a re-import
    # of the same source updates it instead of adding a copy.
    source_ref: Mapped[str | None] = mapped_column(String(64))
    # Position in the merchant change log; see services.revisions.
    revision: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# PostgreSQL only: the first migration adds merchants.geog, geography(Point, 4326),
# GENERATED from lat/lon (so no write path can let them drift apart) and GiST-indexed.
# It is not mapped on Merchant, since SQLite has no such column; PostGIS queries
# (bounding boxes, the oracle tests) select through this construct instead.
merchant_geography = table(
    "merchants",
    column("id", BigInteger),
    column("status", String),
    column("category", String),
    column("geog", Geography("POINT", srid=4326, spatial_index=False)),
)


class MerchantApiKey(Base):
    __tablename__ = "merchant_api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    # sha256 of the key: the key itself is shown once and never stored.
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # From when the key no longer works: now when revoked, the end of the grace period when
    # replaced by a rotation (services.api_keys); never set, it works for good.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RevisionCounter(Base):
    """One row per change log; bumping it inside a write serialises writers in commit order."""

    __tablename__ = "revision_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
