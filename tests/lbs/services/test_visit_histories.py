"""A worker keeps users' recent visits for sort=relevance: every answer equals the event log's
(relevance.user_history), a new visit is seen at the next poll, and the TTL bounds the rest."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from lbs.services import relevance
from lbs.services.events import record_events, server_event
from lbs.services.visit_histories import VisitHistories

START = datetime(2026, 11, 1, tzinfo=UTC)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def history_reads(engine: Engine) -> list[str]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        statement = str(args[2])
        if "FROM events" in statement and "max(" not in statement and "DISTINCT" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen


def visits(rng: random.Random, user_id: int, n: int) -> list[dict[str, Any]]:
    kinds = ["visit", "redemption", "click", "impression"]  # the last two are not visits
    return [
        server_event(
            rng.choice(kinds),
            START + timedelta(minutes=rng.randrange(0, 60 * 24 * 30)),  # ties happen
            user_id=user_id,
            merchant_id=rng.randrange(1, 50),
        )
        for _ in range(n)
    ]


def test_every_answer_is_the_event_logs(engine: Engine, monkeypatch: Any) -> None:
    monkeypatch.setattr(relevance, "HISTORY_VISITS", 40)  # user 2's history is longer than kept
    monkeypatch.setattr("lbs.services.visit_histories.HISTORY_VISITS", 40)
    rng = random.Random(7)
    with Session(engine) as session, session.begin():
        record_events(session, visits(rng, 1, 30) + visits(rng, 2, 200))
    histories = VisitHistories(refresh_s=60.0, ttl_s=60.0, capacity=10, clock=Clock())
    with Session(engine) as session:
        for _ in range(60):
            user_id = rng.choice([1, 2, 3])
            before = START + timedelta(minutes=rng.randrange(-60, 60 * 24 * 31))
            assert histories.visits(session, user_id, before) == relevance.user_history(
                session, user_id, before
            ), (user_id, before)


def test_read_once_then_a_new_visit_is_seen_at_the_next_poll(engine: Engine) -> None:
    later = START + timedelta(days=40)
    with Session(engine) as session, session.begin():
        record_events(session, [server_event("visit", START, user_id=1, merchant_id=5)])
    clock = Clock()
    histories = VisitHistories(refresh_s=1.0, ttl_s=600.0, capacity=10, clock=clock)
    reads = history_reads(engine)
    with Session(engine) as session:
        assert histories.visits(session, 1, later)[1] == [5]
        assert histories.visits(session, 1, later)[1] == [5]
    assert len(reads) == 1
    with Session(engine) as session, session.begin():  # another worker records a visit
        record_events(session, [server_event("visit", START + timedelta(days=1), user_id=1, merchant_id=6)])
    with Session(engine) as session:
        assert histories.visits(session, 1, later)[1] == [5]  # until the poll is due
        clock.now += 1.0
        assert histories.visits(session, 1, later)[1] == [5, 6]
    assert len(reads) == 2


def test_a_visit_the_poll_missed_shows_after_the_ttl(engine: Engine) -> None:
    later = START + timedelta(days=40)
    clock = Clock()
    histories = VisitHistories(refresh_s=1.0, ttl_s=30.0, capacity=10, clock=clock)
    with Session(engine) as session:
        assert histories.visits(session, 1, later) == ([], [])
    # A visit committed with an id the poll has already passed (a slower writer's).
    histories._last_event_id = 10**12
    with Session(engine) as writer, writer.begin():
        record_events(writer, [server_event("visit", START, user_id=1, merchant_id=7)])
    clock.now += 29.0
    with Session(engine) as session:
        assert histories.visits(session, 1, later) == ([], [])
    clock.now += 1.0
    with Session(engine) as session:
        assert histories.visits(session, 1, later)[1] == [7]
