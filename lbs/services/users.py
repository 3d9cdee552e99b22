"""Anonymous users: issued with a bearer token, identified by its SHA-256."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from lbs.errors import Unauthorized
from lbs.models import User
from lbs.services.api_keys import sha256_hex
from lbs.services.sources import ids_by_source_ref

TOKEN_PREFIX = "lbs_ut_"


def create_user(session: Session, now: datetime) -> tuple[int, str]:
    """A new user and its token; the caller shows the token once, we keep only its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(token_sha256=sha256_hex(token), created_at=now)
    session.add(user)
    session.flush()
    return user.id, token


def user_id_for_token(session: Session, token: str) -> int:
    user_id = session.execute(
        select(User.id).where(User.token_sha256 == sha256_hex(token))
    ).scalar_one_or_none()
    if user_id is None:
        raise Unauthorized("unknown user token; get one from POST /v1/users")
    return int(user_id)


def imported_users(session: Session, refs: Sequence[str], now: datetime) -> dict[str, int]:
    """Users for these source refs, created once: ref -> user id. Their tokens are never
    shown (the digest of random bytes), so nobody signs in as them."""
    wanted = sorted(set(refs))
    found = ids_by_source_ref(session, User, wanted)
    missing = [ref for ref in wanted if ref not in found]
    if missing:
        rows = [
            {"token_sha256": sha256_hex(secrets.token_urlsafe(32)), "created_at": now, "source_ref": ref}
            for ref in missing
        ]
        session.execute(insert(User), rows)
        found.update(ids_by_source_ref(session, User, missing))
    return found
