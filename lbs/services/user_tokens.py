"""A user's token over time: replaced at the user's asking, and moved to a new device.

Users are anonymous: the token is the account. Tokens do not expire with time (a user who
opens the app once a year keeps their vouchers), so they are replaced instead:

- **rotation**: the app asks for a new token; the old one stops at once (within
  LBS_USER_CACHE_S on the other workers, which remember tokens that long);
- **transfer**: before a reinstall or on a new phone, the old app asks for a transfer code
  (12 characters, shown to the user, working once for TRANSFER_CODE_TTL); the new app
  redeems it for a new token of the same user, and the old token stops.

A lost token with no transfer code is lost, like cash: nothing else identifies the user.
Codes are kept as a keyed digest (like voucher codes), so a copy of the table reveals none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.errors import InvalidParameter, NotFound
from lbs.models import User
from lbs.services.api_keys import sha256_hex
from lbs.services.users import TOKEN_PREFIX
from lbs.services.voucher_codes import CODE_FORMAT, CODE_LENGTH, crockford, display_code, normalize_code

TRANSFER_CODE_TTL = timedelta(minutes=15)


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def rotate_token(session: Session, user_id: int) -> tuple[str, str]:
    """A new token for the user; the old one stops. Returns (new token, old token's digest)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    old_digest = user.token_sha256
    token = _new_token()
    user.token_sha256 = sha256_hex(token)
    session.flush()
    return token, old_digest


def _code_digest(secret_key: bytes, code: str) -> str:
    return hmac.new(secret_key, b"transfer-code:" + code.encode(), hashlib.sha256).hexdigest()


def new_transfer_code(
    session: Session, secret_key: bytes, user_id: int, now: datetime
) -> tuple[str, datetime]:
    """A one-time code for moving the user (any earlier code stops); (code as shown, until)."""
    code = crockford(secrets.randbits(5 * CODE_LENGTH))
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    user.transfer_code_sha256 = _code_digest(secret_key, code)
    user.transfer_code_expires_at = now + TRANSFER_CODE_TTL
    session.flush()
    return display_code(code), user.transfer_code_expires_at


def redeem_transfer_code(
    session: Session, secret_key: bytes, text: str, now: datetime
) -> tuple[int, str, str]:
    """The user a live code belongs to gets a new token; the code and the old token stop.
    Returns (user id, new token, old token's digest)."""
    code = normalize_code(text)
    if code is None:
        raise InvalidParameter("code", f"code: expected {CODE_FORMAT}")
    user = session.execute(
        select(User).where(User.transfer_code_sha256 == _code_digest(secret_key, code)).with_for_update()
    ).scalar_one_or_none()
    expires = None if user is None else user.transfer_code_expires_at
    if user is None or expires is None or expires <= now:
        raise NotFound("no such transfer code, or it has expired or been used")
    user.transfer_code_sha256 = None
    user.transfer_code_expires_at = None
    session.flush()
    token, old_digest = rotate_token(session, user.id)
    return user.id, token, old_digest
