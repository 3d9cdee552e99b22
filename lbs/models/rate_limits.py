"""Rate-limit counters kept in the database (api.rate_limit_counters): one row per limit,
caller and window."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lbs.models.base import Base


class RateLimitCounter(Base):
    __tablename__ = "rate_limit_counters"

    # The `limits` library's key: the limit, what is counted and who (a digest or an address).
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Seconds since the epoch at which this window ends and the count starts again.
    expires_at: Mapped[float] = mapped_column(Float)
    hits: Mapped[int] = mapped_column(Integer)
