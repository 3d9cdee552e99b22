"""Anonymous users: issued with a bearer token, identified by its SHA-256."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
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


def _user_id_for_digest(session: Session, digest: str) -> int:
    user_id = session.execute(select(User.id).where(User.token_sha256 == digest)).scalar_one_or_none()
    if user_id is None:
        raise Unauthorized("unknown user token; get one from POST /v1/users")
    return int(user_id)


class UserCache:
    """A worker's memory of which user a token belongs to, for ``ttl_s`` seconds.

    A token replaced (services.user_tokens) is forgotten at once by the worker that
    replaced it, and by the others within ``ttl_s``: the bound a replaced token keeps
    working for. Keyed by the token's digest (the token itself is never kept); unknown
    tokens are not remembered.
    """

    def __init__(self, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, float]] = {}

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)

    def user_id(self, session: Session, token: str) -> int:
        digest = sha256_hex(token)
        now = self._clock()
        with self._lock:
            found = self._entries.get(digest)
        if found is not None and now < found[1]:
            return found[0]
        user_id = _user_id_for_digest(session, digest)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # simpler than LRU, and rare: one query per user to refill
            self._entries[digest] = (user_id, now + self.ttl_s)
        return user_id


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
