"""A worker remembers which user a token is for, for user_cache_s, and never an unknown token."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from lbs.errors import Unauthorized
from lbs.services.users import UserCache, create_user
from tests.factories import NOW


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_known_token_is_read_once_per_ttl_and_an_unknown_one_every_time(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        user_id, token = create_user(session, NOW)
    statements: list[str] = []

    def count(*args: Any) -> None:
        if "users" in str(args[2]):  # not SQLite's BEGIN
            statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    clock = Clock()
    cache = UserCache(ttl_s=60.0, clock=clock)
    with Session(engine) as session:
        assert [cache.user_id(session, token) for _ in range(3)] == [user_id] * 3
        assert len(statements) == 1
        clock.now = 61.0
        assert cache.user_id(session, token) == user_id
        assert len(statements) == 2
        for _ in range(2):
            with pytest.raises(Unauthorized):
                cache.user_id(session, "lbs_ut_nobody")
        assert len(statements) == 4
    assert all(token not in s for s in statements)
