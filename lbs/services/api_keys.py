"""Merchant API keys: issued once, stored as sha256, looked up by hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.errors import Unauthorized
from lbs.models import MerchantApiKey
from lbs.services.merchants import get_merchant

KEY_PREFIX = "lbs_mk_"


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key(session: Session, merchant_id: int, now: datetime) -> str:
    """A new key for the merchant; the caller shows it once, we keep only its hash."""
    get_merchant(session, merchant_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(MerchantApiKey(merchant_id=merchant_id, key_sha256=sha256_hex(key), created_at=now))
    session.flush()
    return key


def merchant_id_for_key(session: Session, key: str) -> int:
    row = session.execute(
        select(MerchantApiKey.merchant_id).where(
            MerchantApiKey.key_sha256 == sha256_hex(key), MerchantApiKey.revoked_at.is_(None)
        )
    ).scalar_one_or_none()
    if row is None:
        raise Unauthorized("unknown or revoked API key")
    return int(row)


def token_matches(token: str, expected_sha256: str) -> bool:
    """Constant-time check of a bearer token against a configured sha256 digest."""
    return bool(expected_sha256) and hmac.compare_digest(sha256_hex(token), expected_sha256.lower())
