"""The append-only event log: impressions, clicks, claims, redemptions, visits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lbs.models.base import Base, BigId, UTCDateTime

EVENT_KINDS = ("impression", "click", "claim", "redemption", "visit")
# Where a user saw or read a merchant or deal (migration 0012). Claims and redemptions carry
# none: insights attribute them to the user's last touch of the deal (lbs.services.insights_rollup).
SURFACES = ("nearby", "map", "deal_page", "merchant_page")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # NULLs are distinct on both databases, so server events (no client id) never collide.
        UniqueConstraint("user_id", "client_event_id", name="events_client_id"),
        CheckConstraint(f"kind IN {EVENT_KINDS!r}", name="events_kind"),
        Index("ix_events_user_time", "user_id", "occurred_at"),
        Index("ix_events_merchant_kind_time", "merchant_id", "kind", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(8))  # "server" or "client"
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    merchant_id: Mapped[int | None] = mapped_column(BigInteger)
    deal_id: Mapped[int | None] = mapped_column(BigInteger)
    voucher_id: Mapped[int | None] = mapped_column(BigInteger)
    # Where it happened, never more precisely than an H3 cell (resolution 9).
    h3_cell: Mapped[int | None] = mapped_column(BigInteger)
    client_event_id: Mapped[str | None] = mapped_column(String(64))
    # One of SURFACES or None; PostgreSQL checks it (migration 0012), SQLite trusts the writers.
    surface: Mapped[str | None] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
