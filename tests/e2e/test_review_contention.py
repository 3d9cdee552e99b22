"""Concurrent reviews and edits through two real gunicorn workers keep each merchant's rating
totals exact: merchant_ratings is compared with a recomputation from the reviews themselves.

Each redeemed voucher is reviewed twice at once (one review, one 409), then every review is
edited three times at once with different ratings, on 32 client threads, each request on a
fresh connection; the workers answer from both processes."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR_TOKEN_SHA256, TEST_SECRET_KEY
from tests.e2e.server import Server, gunicorn
from tests.e2e.test_claim_contention import (
    User,
    concurrently,
    error_log_tail,
    merchant_key,
    new_users,
    ok,
    published_deal,
)

pytestmark = pytest.mark.gunicorn

WORKERS = 2
USERS = 40
ENV = {
    "LBS_SECRET_KEY": TEST_SECRET_KEY,
    "LBS_RATE_LIMIT_CLAIM": "100000/minute",
    "LBS_RATE_LIMIT_REDEEM": "100000/minute",
    "LBS_RATE_LIMIT_NEW_USERS": "100000/minute",
    "LBS_LOG_LEVEL": "WARNING",
}


def _redeemed(server: Server, key: str, deal_id: int, user: User) -> int:
    headers = {**user.auth, "Idempotency-Key": str(uuid.uuid4())}
    voucher = ok(server.post(f"/v1/deals/{deal_id}/claim", "claim", headers), 201)
    merchant = {"Authorization": f"Bearer {key}"}
    ok(server.post("/v1/merchant/vouchers/redeem", "redeem", merchant, {"code": voucher["code"]}), 200)
    return int(voucher["id"])


def _totals(engine: Engine) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(merchant_ratings' row, the same recomputed from reviews)."""
    with engine.connect() as c:
        kept = c.execute(text("SELECT review_count, rating_sum, recommend_count FROM merchant_ratings")).one()
        recomputed = c.execute(
            text("SELECT count(*), sum(rating), sum(CASE WHEN rating >= 4 THEN 1 ELSE 0 END) FROM reviews")
        ).one()
    return tuple(kept), tuple(int(v) for v in recomputed)


def test_concurrent_reviews_and_edits_keep_the_totals_exact(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(20261205)
    with gunicorn(
        database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, refresh_s=0.0, env=ENV
    ) as server:
        key = merchant_key(server)
        deal_id = published_deal(server, key, quantity=USERS)
        users = new_users(server, USERS)
        vouchers = concurrently(lambda u: (u, _redeemed(server, key, deal_id, u)), users, threads=16)
        # Each voucher twice, with different ratings: one review, one 409.
        attempts = [
            (n * USERS + i, user, voucher, rng.randint(1, 5))
            for n in range(2)
            for i, (user, voucher) in enumerate(vouchers)
        ]
        rng.shuffle(attempts)

        def review(attempt: tuple[int, User, int, int]) -> tuple[int, int, dict[str, Any]]:
            tag, user, voucher, rating = attempt
            body = {"voucher_id": voucher, "rating": rating, "text": f"Visit {tag}"}
            response = server.send("POST", "/v1/me/reviews", f"review-{tag}", user.auth, body)
            return response.status_code, voucher, response.json()

        written = concurrently(review, attempts, threads=32)
        statuses = Counter(status for status, _, _ in written)
        assert statuses == {201: USERS, 409: USERS}, (statuses, error_log_tail(server))
        assert {v for status, v, _ in written if status == 201} == {v for _, v in vouchers}
        kept, recomputed = _totals(engine)
        assert kept == recomputed and kept[0] == USERS

        authors = {voucher: user for user, voucher in vouchers}
        edits = [
            (f"edit-{body['id']}-{n}", authors[voucher], int(body["id"]), rng.randint(1, 5))
            for status, voucher, body in written
            if status == 201
            for n in range(3)
        ]
        rng.shuffle(edits)

        def edit(attempt: tuple[str, User, int, int]) -> int:
            tag, user, review_id, rating = attempt
            response = server.send("PATCH", f"/v1/me/reviews/{review_id}", tag, user.auth, {"rating": rating})
            return response.status_code

        edited = Counter(concurrently(edit, edits, threads=32))
        assert edited == {200: 3 * USERS}, (edited, error_log_tail(server))
        kept, recomputed = _totals(engine)
        assert kept == recomputed
        served = server.wait_for_log([f"review-{tag}" for tag, *_ in attempts])
        assert len(set(served.values())) == WORKERS, "the burst was served by one worker only"
        # Both workers show the totals as kept (each polls before every request here).
        merchant_id = ok(server.get("/v1/merchants/me", "me", {"Authorization": f"Bearer {key}"}), 200)["id"]
        shown = {
            ok(server.get(f"/v1/merchants/{merchant_id}", f"read-{i}"), 200)["rating"]["count"]
            for i in range(8)
        }
        assert shown == {USERS}
