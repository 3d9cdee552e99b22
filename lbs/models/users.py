"""Anonymous users: an id and the SHA-256 of the bearer token they were issued."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from lbs.models.base import Base, BigId, UTCDateTime


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("ux_users_source_ref", "source_ref", unique=True),
        Index("ux_users_transfer_code", "transfer_code_sha256", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The token is shown once, at creation; only its digest is kept.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Where an imported user comes from ("foursquare:user/17"); such users have a token
    # nobody was shown, so they cannot sign in: they exist for their history.
    source_ref: Mapped[str | None] = mapped_column(String(64))
    # A one-time code that moves the user to a new device (services.user_tokens): its keyed
    # digest, and when it stops working.
    transfer_code_sha256: Mapped[str | None] = mapped_column(String(64))
    transfer_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
