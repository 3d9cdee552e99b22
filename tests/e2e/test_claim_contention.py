"""Concurrent claims through real gunicorn workers never oversell a deal nor exceed a user's limit.

Everything goes through HTTP against 4 sync workers (4 requests served at once, each its own
process and database connection), the clients on 64 threads, each request on a fresh
connection. The database is then read directly to check what the responses claimed.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR, OPERATOR_TOKEN_SHA256, TEST_SECRET_KEY
from tests.e2e.server import Server, gunicorn

pytestmark = pytest.mark.gunicorn

WORKERS = 4
CLIENT_THREADS = 64
SEED = 20261124
ENV = {
    "LBS_SECRET_KEY": TEST_SECRET_KEY,
    "LBS_RATE_LIMIT_CLAIM": "100000/minute",  # the limiter must not answer instead of the claim
    "LBS_RATE_LIMIT_NEW_USERS": "100000/minute",  # 300 users from one address
    "LBS_LOG_LEVEL": "WARNING",
}
PROBLEM_JSON = "application/problem+json"
SOLD_OUT = "deal-not-claimable"
LIMIT_REACHED = "claim-limit-reached"

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class User:
    id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Outcome:
    tag: str
    user: User
    key: str
    status: int
    mimetype: str
    body: dict[str, Any]

    @property
    def problem_type(self) -> str:
        return str(self.body.get("type", ""))

    def describe(self) -> str:
        return f"{self.tag} user {self.user.id}: {self.status} {self.mimetype} {str(self.body)[:300]}"


def concurrently(fn: Callable[[T], R], items: Iterable[T], threads: int = CLIENT_THREADS) -> list[R]:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def ok(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    body: dict[str, Any] = response.json()
    return body


def merchant_key(server: Server) -> str:
    """The operator creates a merchant and issues its API key."""
    body = {"name": "Ramen Contention", "category": "restaurant", "lat": 60.1699, "lon": 24.9384}
    merchant = ok(server.post("/v1/merchants", "merchant", OPERATOR, body), 201)
    key = ok(server.post(f"/v1/merchants/{merchant['id']}/api-keys", "api-key", OPERATOR), 201)
    return str(key["api_key"])


def published_deal(server: Server, api_key: str, quantity: int, per_user_limit: int = 1) -> int:
    """A live deal: all day (no windows), valid from an hour ago to tomorrow."""
    now = datetime.now(UTC)
    body = {
        "title": "Evening ramen -40 %",
        "kind": "percent_off",
        "currency": "EUR",
        "list_price_minor": 1500,
        "deal_price_minor": 900,
        "quantity_total": quantity,
        "per_user_limit": per_user_limit,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=1)).isoformat(),
        "publish": True,
    }
    deal = ok(server.post("/v1/merchant/deals", "deal", {"Authorization": f"Bearer {api_key}"}, body), 201)
    assert deal["state"] == "live", deal
    return int(deal["id"])


def new_users(server: Server, n: int) -> list[User]:
    def one(i: int) -> User:
        body = ok(server.post("/v1/users", f"user-{i}"), 201)
        return User(int(body["user_id"]), str(body["token"]))

    users = concurrently(one, range(n))
    assert len({u.id for u in users}) == n
    return users


def claim_all(server: Server, deal_id: int, attempts: list[tuple[str, User, str]]) -> list[Outcome]:
    """Fire (tag, user, Idempotency-Key) claims concurrently; a 5xx or transport error is an outcome too."""

    def one(attempt: tuple[str, User, str]) -> Outcome:
        tag, user, key = attempt
        headers = {**user.auth, "Idempotency-Key": key}
        response = server.post(f"/v1/deals/{deal_id}/claim", tag, headers)
        try:
            body = response.json()
        except ValueError:
            body = {"text": response.text[:300]}
        mimetype = response.headers.get("Content-Type", "").split(";")[0]
        return Outcome(tag, user, key, response.status_code, mimetype, body)

    return concurrently(one, attempts)


def error_log_tail(server: Server) -> str:
    return server.error_log.read_text()[-3000:] if server.error_log.exists() else ""


def assert_no_server_errors(server: Server, outcomes: list[Outcome]) -> None:
    failed = [o for o in outcomes if o.status >= 500]
    assert not failed, (
        f"{len(failed)} of {len(outcomes)} claims failed on the server "
        f"({Counter(o.status for o in failed)}), e.g.:\n"
        + "\n".join(o.describe() for o in failed[:5])
        + f"\n--- gunicorn log ---\n{error_log_tail(server)}"
    )


def assert_workers_shared_the_burst(server: Server, tags: list[str]) -> None:
    """Every worker answered part of the burst, so claims really ran in several processes at once."""
    served_by = server.wait_for_log(tags)
    workers = {served_by[tag] for tag in tags}
    assert len(workers) == WORKERS, f"the burst was served by {len(workers)} worker(s) only"


def db_facts(engine: Engine, deal_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        per_user: dict[int, int] = dict(
            conn.execute(
                text("SELECT user_id, count(*) FROM vouchers WHERE deal_id = :d GROUP BY user_id"),
                {"d": deal_id},
            ).all()
        )
        all_per_user = conn.execute(
            text("SELECT user_id, count(*) FROM vouchers GROUP BY user_id HAVING count(*) > 1")
        ).all()
        claimed, total = conn.execute(
            text("SELECT quantity_claimed, quantity_total FROM deals WHERE id = :d"), {"d": deal_id}
        ).one()
        vouchers = conn.execute(
            text("SELECT count(*) FROM vouchers WHERE deal_id = :d"), {"d": deal_id}
        ).scalar()
        events = conn.execute(
            text("SELECT count(*) FROM events WHERE kind = 'claim' AND deal_id = :d"), {"d": deal_id}
        ).scalar()
        digests = conn.execute(
            text("SELECT count(DISTINCT code_digest) FROM vouchers WHERE deal_id = :d"), {"d": deal_id}
        ).scalar()
        counts: dict[int, int] = dict(
            conn.execute(
                text("SELECT user_id, claims FROM user_deal_claims WHERE deal_id = :d"), {"d": deal_id}
            ).all()
        )
    return {
        "per_user": {int(k): int(v) for k, v in per_user.items()},
        "users_with_several": all_per_user,
        "quantity_claimed": claimed,
        "quantity_total": total,
        "vouchers": vouchers,
        "claim_events": events,
        "distinct_digests": digests,
        "user_deal_claims": {int(k): int(v) for k, v in counts.items()},
    }


def my_vouchers(server: Server, users: list[User]) -> dict[int, list[dict[str, Any]]]:
    def one(user: User) -> list[dict[str, Any]]:
        body = ok(server.get("/v1/me/vouchers", f"mine-{user.id}", headers=user.auth), 200)
        items: list[dict[str, Any]] = body["items"]
        return items

    return dict(zip((u.id for u in users), concurrently(one, users), strict=True))


def test_400_concurrent_claims_on_50_vouchers_sell_exactly_50_one_per_user(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    quantity, n_users, n_second = 50, 300, 100
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=ENV) as server:
        server.wait_for_workers(WORKERS)
        deal_id = published_deal(server, merchant_key(server), quantity)
        users = new_users(server, n_users)
        rng = random.Random(SEED)
        attempts = [(f"claim-{u.id}-1", u, str(uuid.UUID(int=rng.getrandbits(128)))) for u in users]
        attempts += [
            (f"claim-{u.id}-2", u, str(uuid.UUID(int=rng.getrandbits(128))))
            for u in rng.sample(users, n_second)
        ]
        rng.shuffle(attempts)
        assert len({key for _, _, key in attempts}) == len(attempts) == n_users + n_second

        outcomes = claim_all(server, deal_id, attempts)
        assert_no_server_errors(server, outcomes)
        assert_workers_shared_the_burst(server, [tag for tag, _, _ in attempts])
        holdings = my_vouchers(server, users)
        facts = db_facts(engine, deal_id)

    statuses = Counter(o.status for o in outcomes)
    won = [o for o in outcomes if o.status == 201]
    lost = [o for o in outcomes if o.status != 201]
    assert len(won) == quantity, f"{len(won)} claims won, expected {quantity}: {statuses}"
    unexpected = [
        o
        for o in lost
        if o.status != 409
        or o.mimetype != PROBLEM_JSON
        or not (
            (o.problem_type.endswith("/" + SOLD_OUT) and o.body.get("reason") == "sold_out")
            or o.problem_type.endswith("/" + LIMIT_REACHED)
        )
    ]
    assert not unexpected, f"{len(unexpected)} unexpected answers: " + "\n".join(
        o.describe() for o in unexpected[:5]
    )

    winners = Counter(o.user.id for o in won)
    assert max(winners.values()) == 1, f"users with several 201s: {[u for u, n in winners.items() if n > 1]}"
    limit_hit = {o.user.id for o in lost if o.problem_type.endswith("/" + LIMIT_REACHED)}
    assert limit_hit <= set(winners), (
        f"claim-limit-reached for users without a voucher: {limit_hit - set(winners)}"
    )
    codes = [o.body["code"] for o in won]
    assert len(set(codes)) == quantity, "voucher codes repeat"
    assert {o.body["deal_id"] for o in won} == {deal_id}
    assert len({o.body["id"] for o in won}) == quantity

    # What each user sees: the winner its one voucher, everyone else none.
    won_by = {o.user.id: o.body for o in won}
    for user in users:
        held = holdings[user.id]
        if user.id in won_by:
            assert [(v["id"], v["code"]) for v in held] == [(won_by[user.id]["id"], won_by[user.id]["code"])]
        else:
            assert held == [], f"user {user.id} lost every claim yet holds {held}"

    # What the database holds.
    assert facts["users_with_several"] == [], f"users with several vouchers: {facts['users_with_several']}"
    assert facts["per_user"] == dict.fromkeys(winners, 1)
    assert facts["quantity_claimed"] == facts["quantity_total"] == quantity, facts
    assert facts["vouchers"] == quantity, facts
    assert facts["claim_events"] == quantity, facts
    assert facts["distinct_digests"] == quantity, facts
    assert facts["user_deal_claims"] == dict.fromkeys(winners, 1), facts


def test_concurrent_replays_of_one_idempotency_key_get_one_voucher(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    quantity, n_users, copies = 100, 20, 5
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=ENV) as server:
        deal_id = published_deal(server, merchant_key(server), quantity)
        users = new_users(server, n_users)
        keys = {u.id: str(uuid.uuid4()) for u in users}
        # A user's copies are adjacent, so they are in flight at the same time on different workers.
        attempts = [(f"replay-{u.id}-{c}", u, keys[u.id]) for u in users for c in range(copies)]
        outcomes = claim_all(server, deal_id, attempts)
        assert_no_server_errors(server, outcomes)
        holdings = my_vouchers(server, users)
        facts = db_facts(engine, deal_id)

    by_user: dict[int, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_user[o.user.id].append(o)
    for user in users:
        answers = by_user[user.id]
        described = "\n".join(o.describe() for o in answers)
        assert sorted(o.status for o in answers) == [200] * (copies - 1) + [201], (
            f"user {user.id}: expected one 201 and {copies - 1} 200s:\n{described}"
        )
        assert len({(o.body["id"], o.body["code"]) for o in answers}) == 1, f"user {user.id}:\n{described}"
        assert [v["id"] for v in holdings[user.id]] == [answers[0].body["id"]]

    assert facts["vouchers"] == n_users, facts
    assert facts["per_user"] == {u.id: 1 for u in users}, facts
    assert facts["quantity_claimed"] == n_users, facts
    assert facts["claim_events"] == n_users, facts
    assert facts["user_deal_claims"] == {u.id: 1 for u in users}, facts


def test_concurrent_claims_with_distinct_keys_stop_at_the_per_user_limit(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """A refused claim takes no stock: the stock unit it took first is rolled back with it."""
    quantity, limit, n_users, tries = 100, 2, 20, 5
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=ENV) as server:
        deal_id = published_deal(server, merchant_key(server), quantity, per_user_limit=limit)
        users = new_users(server, n_users)
        attempts = [(f"try-{u.id}-{c}", u, str(uuid.uuid4())) for u in users for c in range(tries)]
        outcomes = claim_all(server, deal_id, attempts)
        assert_no_server_errors(server, outcomes)
        facts = db_facts(engine, deal_id)

    by_user: dict[int, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_user[o.user.id].append(o)
    for user in users:
        answers = by_user[user.id]
        described = "\n".join(o.describe() for o in answers)
        assert sorted(o.status for o in answers) == [201] * limit + [409] * (tries - limit), described
        refused = [o for o in answers if o.status == 409]
        assert all(o.problem_type.endswith("/" + LIMIT_REACHED) for o in refused), described
        assert all(o.body.get("per_user_limit") == limit for o in refused), described

    assert facts["per_user"] == {u.id: limit for u in users}, facts
    assert facts["user_deal_claims"] == {u.id: limit for u in users}, facts
    assert facts["quantity_claimed"] == facts["vouchers"] == facts["claim_events"] == n_users * limit, facts
