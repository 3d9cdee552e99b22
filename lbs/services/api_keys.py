"""Merchant API keys: issued once, stored as sha256, looked up by hash; rotated with a grace
period and revoked.

A key works until its ``revoked_at``: never set, it works for good; revocation sets it to
now; a rotation sets the replaced key's to the end of its grace period, so the merchant's
devices can move to the new key without a moment when neither works.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lbs.errors import NotFound, Unauthorized
from lbs.models import MerchantApiKey
from lbs.services.merchants import get_merchant

KEY_PREFIX = "lbs_mk_"
MAX_GRACE = timedelta(days=7)


class IssuedKey(NamedTuple):
    id: int
    key: str  # shown once, never stored


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key(session: Session, merchant_id: int, now: datetime) -> IssuedKey:
    """A new key for the merchant; the caller shows it once, we keep only its hash."""
    get_merchant(session, merchant_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = MerchantApiKey(merchant_id=merchant_id, key_sha256=sha256_hex(key), created_at=now)
    session.add(row)
    session.flush()
    return IssuedKey(row.id, key)


def key_in_use(session: Session, key: str, now: datetime) -> MerchantApiKey:
    """The key's row, if it works at ``now`` (401 otherwise)."""
    row = session.execute(
        select(MerchantApiKey).where(
            MerchantApiKey.key_sha256 == sha256_hex(key),
            or_(MerchantApiKey.revoked_at.is_(None), MerchantApiKey.revoked_at > now),
        )
    ).scalar_one_or_none()
    if row is None:
        raise Unauthorized("unknown or revoked API key")
    return row


def merchant_id_for_key(session: Session, key: str, now: datetime) -> int:
    return int(key_in_use(session, key, now).merchant_id)


class Rotation(NamedTuple):
    merchant_id: int
    issued: IssuedKey
    previous_id: int
    previous_until: datetime


def rotate_api_key(session: Session, key: str, now: datetime, grace: timedelta) -> Rotation:
    """A new key for the merchant of ``key``; ``key`` keeps working for ``grace`` (at most
    MAX_GRACE), or less if it was to stop sooner anyway."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise ValueError(f"grace must be 0 to {MAX_GRACE}")
    old = key_in_use(session, key, now)
    until = now + grace
    if old.revoked_at is None or old.revoked_at > until:
        old.revoked_at = until
    issued = issue_api_key(session, old.merchant_id, now)
    return Rotation(old.merchant_id, issued, old.id, old.revoked_at)


def revoke_api_key(session: Session, merchant_id: int, key_id: int, now: datetime) -> MerchantApiKey:
    """Stop the merchant's key ``key_id`` now (404 if the merchant has no such key)."""
    row = session.get(MerchantApiKey, key_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound(f"merchant {merchant_id} has no API key {key_id}")
    if row.revoked_at is None or row.revoked_at > now:
        row.revoked_at = now
    session.flush()
    return row


def list_api_keys(session: Session, merchant_id: int, now: datetime) -> list[dict[str, Any]]:
    """The merchant's keys, newest first: id, created_at, revoked_at, and whether each works now."""
    get_merchant(session, merchant_id)
    mine = select(MerchantApiKey).where(MerchantApiKey.merchant_id == merchant_id)
    rows = session.scalars(mine.order_by(MerchantApiKey.id.desc()))
    return [
        {
            "id": r.id,
            "created_at": r.created_at,
            "revoked_at": r.revoked_at,
            "active": r.revoked_at is None or r.revoked_at > now,
        }
        for r in rows
    ]


def token_matches(token: str, expected_sha256: str) -> bool:
    """Constant-time check of a bearer token against a configured sha256 digest."""
    return bool(expected_sha256) and hmac.compare_digest(sha256_hex(token), expected_sha256.lower())
