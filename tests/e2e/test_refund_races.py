"""Refunds that race through real processes: a refund and a redemption of one voucher sent to
two gunicorn workers at the same moment, and two `lbs payments expire` runs started together.
What each voucher ends as is read from the database and from localstripe afterwards."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from lbs.models import Deal, Order, Refund, Voucher
from lbs.payments import books
from lbs.services import reconciliation
from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.prepaid_shop import (
    PRICE_MINOR,
    paid_voucher,
    place_order,
    prepaid_deal,
    provider,
    start_expire,
    stripe_env,
    test_payment,
    users_of,
)
from tests.e2e.server import Server, gunicorn
from tests.e2e.test_claim_contention import User, concurrently, merchant_key, ok

pytestmark = pytest.mark.gunicorn

WORKERS = 2
CLIENT_THREADS = 4
RACES = 24
EXPIRING = 24  # vouchers of a deal refunded on expiry
EARNED = 6  # and of a no-refunds deal, earned by its merchant on expiry


def race(server: Server, user: User, voucher: dict[str, Any], merchant: dict[str, str]) -> dict[str, Any]:
    """The holder's refund and the counter's redemption of one voucher, released together."""
    gate = threading.Barrier(2)

    def refund() -> requests.Response:
        gate.wait()
        return server.post(f"/v1/me/vouchers/{voucher['id']}/refund", f"refund-{voucher['id']}", user.auth)

    def redeem() -> requests.Response:
        gate.wait()
        return server.post("/v1/merchant/vouchers/redeem", f"redeem-{voucher['id']}", merchant,
                           {"code": voucher["code"]})  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        refunded, redeemed = pool.submit(refund), pool.submit(redeem)
        return {"refund": refunded.result(), "redeem": redeemed.result()}


def test_refund_racing_redemption_one_wins(
    database_url: str, engine: Engine, localstripe: str, tmp_path: Path
) -> None:
    # Sync workers: each takes one connection at a time (a gthread worker takes both of a
    # pair and answers them one after the other), so the other worker takes the second.
    env = stripe_env(localstripe)
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=env) as server:
        api_key = merchant_key(server)
        merchant = {"Authorization": f"Bearer {api_key}"}
        deal_id = prepaid_deal(server, api_key, RACES)
        users = users_of(engine, RACES)
        vouchers = concurrently(
            lambda u: paid_voucher(server, u, deal_id, f"buy-{u.id}"), users, CLIENT_THREADS
        )
        server.wait_for_workers(WORKERS)
        outcomes = [race(server, u, v, merchant) for u, v in zip(users, vouchers, strict=True)]
        served_by = server.wait_for_log(
            [f"{kind}-{v['id']}" for v in vouchers for kind in ("refund", "redeem")]
        )
        deal_left = ok(server.get(f"/v1/deals/{deal_id}", "deal"), 200)["stock_left"]

    winners: dict[int, str] = {}
    for voucher, outcome in zip(vouchers, outcomes, strict=True):
        statuses = {kind: answer.status_code for kind, answer in outcome.items()}
        described = {kind: answer.text[:300] for kind, answer in outcome.items()}
        assert sorted(statuses.values()) == [200, 409], f"voucher {voucher['id']}: {described}"
        winner = "refund" if statuses["refund"] == 200 else "redeem"
        loser = outcome["redeem" if winner == "refund" else "refund"].json()
        problem = "voucher-refunded" if winner == "refund" else "voucher-already-redeemed"
        assert loser["type"].endswith("/" + problem), f"voucher {voucher['id']}: {described}"
        winners[voucher["id"]] = winner
    split = sum(served_by[f"refund-{v['id']}"] != served_by[f"redeem-{v['id']}"] for v in vouchers)
    won = Counter(winners.values())
    print(f"\n{engine.dialect.name}: {dict(won)}; {split} of {RACES} pairs answered by two workers")
    assert split >= RACES // 2, f"only {split} of {RACES} pairs ran in two workers at once"

    with Session(engine) as session:
        rows = {v.id: v for v in session.scalars(select(Voucher).where(Voucher.deal_id == deal_id))}
        intents = dict(
            session.execute(select(Order.id, Order.intent_id).where(Order.deal_id == deal_id)).all()
        )
        refunds = list(session.scalars(select(Refund)))
        claimed = session.execute(select(Deal.quantity_claimed).where(Deal.id == deal_id)).scalar_one()
        units, money = reconciliation.check_books(session), books.check_books(session)
    refunded_ids = {v.id for v in rows.values() if v.refunded_at is not None}
    redeemed_ids = {v.id for v in rows.values() if v.redeemed_at is not None}
    assert not refunded_ids & redeemed_ids, "vouchers both redeemed and refunded"
    assert refunded_ids | redeemed_ids == set(rows) and len(rows) == RACES
    assert refunded_ids == {i for i, w in winners.items() if w == "refund"}
    assert sorted((r.voucher_id, r.status) for r in refunds) == sorted((i, "succeeded") for i in refunded_ids)

    # localstripe refunded exactly the vouchers that ended refunded, each once, in full.
    payments = provider(localstripe)
    for row in rows.values():
        made = payments.list_refunds(intents[row.order_id or 0] or "")
        expected = [(PRICE_MINOR, "succeeded")] if row.id in refunded_ids else []
        assert [(r.amount_minor, r.status) for r in made] == expected, f"voucher {row.id}: {made}"
    assert claimed == len(redeemed_ids) and deal_left == len(refunded_ids)
    assert units.balanced, units.problems()
    assert money.ok, (money.books, money.problems)


def test_expiry_job_twice_at_once_refunds_each_voucher_once(
    database_url: str, engine: Engine, localstripe: str, tmp_path: Path
) -> None:
    with gunicorn(
        database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=stripe_env(localstripe),
        serving_config=True,
    ) as server:  # fmt: skip
        api_key = merchant_key(server)
        refundable = prepaid_deal(server, api_key, EXPIRING, redeem_within_minutes=1)
        kept = prepaid_deal(server, api_key, EARNED, redeem_within_minutes=1, refund_policy="none")
        users = users_of(engine, EXPIRING + EARNED)
        buyers = [(u, refundable) for u in users[:EXPIRING]] + [(u, kept) for u in users[EXPIRING:]]

        def buy(buyer: tuple[User, int]) -> None:
            user, deal_id = buyer
            order = ok(place_order(server, user, deal_id, f"order-{user.id}"), 201)
            ok(test_payment(server, user, order["id"], "visa", f"pay-{order['id']}"), 200)

        concurrently(buy, buyers, CLIENT_THREADS)

    # Both started together, as two overlapping cron runs would be, at a time past every expiry.
    later = datetime.now(UTC) + timedelta(minutes=2)
    started = time.monotonic()
    jobs = [start_expire(database_url, localstripe, at=later) for _ in range(2)]
    outputs = [job.communicate(timeout=60) for job in jobs]
    took_s = time.monotonic() - started
    assert [job.returncode for job in jobs] == [0, 0], outputs
    said = [_counts(stdout) for stdout, _ in outputs]
    print(f"\n{engine.dialect.name}: two runs in {took_s:.1f} s: {said}")
    assert sum(s["refunded"] for s in said) == EXPIRING, said
    assert sum(s["earned"] for s in said) == EARNED, said

    with Session(engine) as session:
        vouchers = list(session.scalars(select(Voucher)))
        intents = dict(session.execute(select(Order.id, Order.intent_id)).all())
        refunds = list(session.scalars(select(Refund)))
        units, money = reconciliation.check_books(session), books.check_books(session)
        claimed = dict(session.execute(select(Deal.id, Deal.quantity_claimed)).all())
    by_deal = Counter(v.deal_id for v in vouchers)
    assert by_deal == {refundable: EXPIRING, kept: EARNED}
    refunded = [v for v in vouchers if v.deal_id == refundable]
    earned = [v for v in vouchers if v.deal_id == kept]
    assert all(v.refunded_at is not None and v.earned_at is None for v in refunded)
    assert all(v.earned_at is not None and v.refunded_at is None and v.commission_minor == 90 for v in earned)
    assert Counter(r.voucher_id for r in refunds) == {v.id: 1 for v in refunded}
    assert {(r.amount_minor, r.status, r.reason) for r in refunds} == {(PRICE_MINOR, "succeeded", "expiry")}

    payments = provider(localstripe)
    for voucher in vouchers:
        made = payments.list_refunds(intents[voucher.order_id or 0] or "")
        expected = [(PRICE_MINOR, "succeeded")] if voucher.deal_id == refundable else []
        assert [(r.amount_minor, r.status) for r in made] == expected, f"voucher {voucher.id}: {made}"
    assert claimed == {refundable: 0, kept: EARNED}
    assert units.balanced, units.problems()
    assert money.ok, (money.books, money.problems)
    assert [(b.paid_in, b.refunded, b.owed_to_merchants + b.commission, b.held) for b in money.books] == [
        ((EXPIRING + EARNED) * PRICE_MINOR, EXPIRING * PRICE_MINOR, EARNED * PRICE_MINOR, 0)
    ]


def _counts(stdout: str) -> dict[str, int]:
    """What a run of `lbs payments expire` says it did."""
    refunded = re.search(r"expired vouchers refunded (\d+), earned under no refunds (\d+)", stdout)
    assert refunded is not None, stdout
    return {"refunded": int(refunded.group(1)), "earned": int(refunded.group(2))}
