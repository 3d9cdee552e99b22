"""Merchant insights' rollup of the event log: a day's funnel per bucket, and how far it has read."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from lbs.models.base import Base, UTCDateTime


class InsightDay(Base):
    """A merchant's funnel (deal_id 0) or one deal's, on one local day, in one bucket of one
    dimension: total (key ""), hour ("0".."23"), area (an H3 res-7 cell in hex, or "unknown")
    or source (a surface, or "unknown"). Written only by lbs.services.insights_rollup."""

    __tablename__ = "insight_days"

    merchant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The users with any funnel event here that day, and which of them saw an impression:
    # distinct users over a range are a union of these sets (lbs.services.insight_sets).
    users: Mapped[int] = mapped_column(Integer)
    user_ids: Mapped[bytes] = mapped_column(LargeBinary)
    impressions: Mapped[int] = mapped_column(Integer)  # users who saw it that day
    clicks: Mapped[int] = mapped_column(Integer)
    claims: Mapped[int] = mapped_column(Integer)
    redemptions: Mapped[int] = mapped_column(Integer)
    revenue_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger)


class InsightProgress(Base):
    """One row: events up to rolled_up_to are in insight_days. seen_max_id is the largest id at
    seen_at; once every transaction open then has ended, the next refresh rolls up to it."""

    __tablename__ = "insight_progress"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rolled_up_to: Mapped[int] = mapped_column(BigInteger)
    seen_max_id: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
