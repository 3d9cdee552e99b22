"""400 users pay for a prepaid deal of 50 through real gunicorn workers while holds expire.

Every user orders (a unit held for HOLD_S), then pays at once, pays late, pays at the provider
without telling lbs (as a client's Stripe.js would: lbs learns of it from the expiry job), has
the card declined (and orders again), or walks away; a user finding the deal sold out (every
unit held or sold) may come back once a little later. Meanwhile the expiry job runs twice over
(`lbs payments expire` in a loop, each run a process of its own, and the same job in this
process every 0.3 s), and a watcher reads the database in snapshots: the stock taken never
passes 50 and always equals the units held (vouchers plus pending holds).

At the end every intent is checked at localstripe: charged at most once, every charge kept with
a voucher or refunded, every order released with its intent cancelled; no user keeps two
charges; the books balance; the units released went back to stock (the last users take them
until the deal is sold out, with exactly 50 vouchers).
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from lbs.db import make_session_factory
from lbs.models import Deal, Order, Refund, Voucher
from lbs.payments import books
from lbs.payments.expiry import Expired, expire
from lbs.payments.provider import ProviderError
from lbs.services import reconciliation
from tests.conftest import OPERATOR_TOKEN_SHA256, TEST_SECRET_KEY
from tests.e2e.prepaid_shop import (
    charges_of,
    place_order,
    prepaid_deal,
    provider,
    run_expire,
    stripe_env,
    test_payment,
    users_of,
)
from tests.e2e.server import Server, gunicorn
from tests.e2e.test_claim_contention import User, concurrently, merchant_key, ok

pytestmark = pytest.mark.gunicorn

WORKERS = 4
CLIENT_THREADS = 48
QUANTITY = 50
N_USERS = 400
HOLD_S = 3.0
ORDERS_PER_USER = 2  # a declined card: order again, once
COMEBACK_SHARE = 0.25  # of users finding the deal sold out, who try once more
COMEBACK_AFTER_S = (1.0, 2 * 3.0)
SEED = 20261205
# What a user does with a held order, and how often.
FATES = {"pay": 35, "pay_late": 15, "pay_at_provider": 15, "decline": 15, "walk_away": 20}
RELEASED = {"expired", "failed", "canceled"}


@dataclass
class Attempt:
    user: User
    order_id: int
    intent_id: str
    fate: str
    hold_expires_at: datetime
    paid_after_hold: bool = False
    answer: str = ""


@dataclass
class Watch:
    """What the watcher saw, snapshot by snapshot, while the traffic ran."""

    snapshots: int = 0
    max_claimed: int = 0
    problems: list[str] = field(default_factory=list)


def snapshot_session(engine: Engine) -> Session:
    """A session whose reads share one snapshot (PostgreSQL: REPEATABLE READ; SQLite's WAL
    readers see one already), so that the counts it compares are of one moment."""
    if engine.dialect.name == "postgresql":
        return Session(engine.execution_options(isolation_level="REPEATABLE READ"))
    return Session(engine)


def watch(engine: Engine, deal_id: int, stop: threading.Event, seen: Watch) -> None:
    while not stop.is_set():
        with snapshot_session(engine) as session:
            claimed = session.execute(select(Deal.quantity_claimed).where(Deal.id == deal_id)).scalar_one()
            check = reconciliation.check_books(session)
        seen.snapshots += 1
        seen.max_claimed = max(seen.max_claimed, claimed)
        seen.problems += check.problems()
        stop.wait(0.1)


def expire_by_cli(database_url: str, localstripe: str, stop: threading.Event, runs: list[Any]) -> None:
    """`lbs payments expire` again and again, each run a process of its own, as cron runs it."""
    while not stop.is_set():
        runs.append(run_expire(database_url, localstripe))


def expire_in_process(engine: Engine, localstripe: str, stop: threading.Event, runs: list[Any]) -> None:
    """The same job at the same time from another process (this one), every 0.3 s."""
    sessions = make_session_factory(engine)
    payments = provider(localstripe)
    while not stop.is_set():
        with sessions() as session:
            runs.append(expire(session, payments, TEST_SECRET_KEY.encode(), datetime.now(UTC), 1000))
        stop.wait(0.3)


def assert_released_first(answer: requests.Response, attempt: Attempt) -> None:
    """A payment refused because the hold had run out and was released first: nothing paid.
    Sent within the hold, perhaps, but answered after it (queued behind the burst)."""
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"].endswith("not pending: nothing to pay"), answer.text
    assert datetime.now(UTC) >= attempt.hold_expires_at, f"refused within the hold: {answer.text}"


def shop(server: Server, localstripe: str, deal_id: int, user: User) -> list[Attempt]:
    """One user's visit: an order met with the user's fate. Sold out (every unit held or
    sold), a share of users come back once a little later; declined, a user orders again."""
    rng = random.Random(f"{SEED}-{user.id}")
    payer = provider(localstripe)
    attempts: list[Attempt] = []
    comebacks = 1 if rng.random() < COMEBACK_SHARE else 0
    while len(attempts) < ORDERS_PER_USER:
        placed = place_order(server, user, deal_id, f"order-{user.id}-{len(attempts)}-{comebacks}")
        if placed.status_code == 409:
            problem = placed.json()
            assert problem.get("reason") == "sold_out", problem
            if comebacks == 0:
                return attempts
            comebacks -= 1
            time.sleep(rng.uniform(*COMEBACK_AFTER_S))
            continue
        order = ok(placed, 201)
        fate = rng.choices(list(FATES), weights=list(FATES.values()))[0]
        attempt = Attempt(
            user, order["id"], order["payment"]["intent_id"], fate,
            datetime.fromisoformat(order["hold_expires_at"]),
        )  # fmt: skip
        attempts.append(attempt)
        if order["status"] != "pending":
            # Queued past its hold: released before its intent was made (never to be paid).
            assert order["status"] == "expired" and order["payment"]["client_secret"] is None, order
            assert datetime.now(UTC) >= attempt.hold_expires_at, order
            attempt.fate = "expired_at_once"
            return attempts
        if fate == "walk_away":
            return attempts
        if fate == "decline":
            declined = test_payment(server, user, order["id"], "declined", f"decline-{order['id']}")
            attempt.answer = str(declined.status_code)
            if declined.status_code != 402:  # queued past the hold: released before the attempt
                assert_released_first(declined, attempt)
            continue
        if fate == "pay":
            time.sleep(rng.uniform(0, HOLD_S / 3))
        else:
            time.sleep(rng.uniform(HOLD_S - 0.5, HOLD_S + 1.5))
        attempt.paid_after_hold = datetime.now(UTC) >= attempt.hold_expires_at
        if fate == "pay_at_provider":
            try:
                attempt.answer = payer.pay_with_test_card(attempt.intent_id, "visa").status
            except ProviderError as refused:  # lbs cancelled the intent as the hold ran out
                attempt.answer = f"refused: {refused}"
            return attempts
        paid = test_payment(server, user, order["id"], "visa", f"pay-{order['id']}")
        attempt.answer = str(paid.status_code)
        if paid.status_code == 200:
            assert paid.json()["status"] == "paid" and paid.json()["voucher_id"] is not None, paid.json()
        else:
            assert_released_first(paid, attempt)
        return attempts
    return attempts


def rows(engine: Engine, deal_id: int) -> tuple[list[Order], list[Voucher], list[Refund], Deal]:
    with Session(engine) as session:
        orders = list(session.scalars(select(Order).where(Order.deal_id == deal_id)))
        vouchers = list(session.scalars(select(Voucher).where(Voucher.deal_id == deal_id)))
        refunds = list(session.scalars(select(Refund).join(Order).where(Order.deal_id == deal_id)))
        deal = session.get(Deal, deal_id)
        assert deal is not None
        session.expunge_all()
    return orders, vouchers, refunds, deal


def by_order_status(orders: list[Order], attempt: Attempt) -> str:
    return next(o.status for o in orders if o.id == attempt.order_id)


def books_of(engine: Engine) -> tuple[reconciliation.Books, books.Check]:
    with Session(engine) as session:
        return reconciliation.check_books(session), books.check_books(session)


def test_400_users_pay_for_50_units_while_holds_expire(
    database_url: str, engine: Engine, localstripe: str, tmp_path: Path
) -> None:
    env = stripe_env(localstripe, hold_s=HOLD_S)
    with gunicorn(
        database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=env, serving_config=True
    ) as server:
        deal_id = prepaid_deal(server, merchant_key(server), QUANTITY)
        users = users_of(engine, N_USERS)
        traffic_started = time.monotonic()

        stop, seen = threading.Event(), Watch()
        runs: list[subprocess.CompletedProcess[str]] = []
        job_runs: list[Expired] = []
        helpers = [
            threading.Thread(target=watch, args=(engine, deal_id, stop, seen)),
            threading.Thread(target=expire_by_cli, args=(database_url, localstripe, stop, runs)),
            threading.Thread(target=expire_in_process, args=(engine, localstripe, stop, job_runs)),
        ]
        for helper in helpers:
            helper.start()
        try:
            visits = concurrently(lambda u: shop(server, localstripe, deal_id, u), users, CLIENT_THREADS)
        finally:
            stop.set()
            for helper in helpers:
                helper.join()
        traffic_s = time.monotonic() - traffic_started
        attempts = [a for visit in visits for a in visit]

        # Every hold still standing runs out; one more run of the job settles them.
        orders, *_ = rows(engine, deal_id)
        last_hold = max(o.hold_expires_at for o in orders)
        time.sleep(max(0.0, (last_hold - datetime.now(UTC)).total_seconds()) + 0.1)
        final = run_expire(database_url, localstripe)
        assert final.returncode == 0, final.stdout + final.stderr
        orders, vouchers, refunds, deal = rows(engine, deal_id)
        units, money = books_of(engine)
        stock_left = ok(server.get(f"/v1/deals/{deal_id}", "deal-after"), 200)["stock_left"]
        charges = charges_of(localstripe, {o.intent_id for o in orders if o.intent_id})
        payments = provider(localstripe)
        released = [o.intent_id for o in orders if o.status in RELEASED and o.intent_id]
        intent_states = dict(
            zip(released, concurrently(lambda i: payments.get_intent(i).status, released, 8), strict=True)
        )

        # The units released along the way are sold again: the last users take them.
        left = QUANTITY - len(vouchers)
        wanting = [u for u in users if u.id not in {v.user_id for v in vouchers}][: left + 20]
        last = concurrently(
            lambda u: place_order(server, u, deal_id, f"last-{u.id}"), wanting, CLIENT_THREADS
        )
        won = [(u, r.json()) for u, r in zip(wanting, last, strict=True) if r.status_code == 201]
        assert len(won) == left, Counter(r.status_code for r in last)
        assert all(r.json().get("reason") == "sold_out" for r in last if r.status_code != 201)
        for user, order in won:
            ok(test_payment(server, user, order["id"], "visa", f"last-pay-{order['id']}"), 200)
        sold_out = ok(server.get(f"/v1/deals/{deal_id}", "deal-sold-out"), 200)
        *_, deal_at_end = rows(engine, deal_id)
        units_at_end, money_at_end = books_of(engine)

    late = [a for a in attempts if a.paid_after_hold]
    print(
        f"\n{engine.dialect.name}: traffic {traffic_s:.1f} s, {len(attempts)} orders held "
        f"{dict(Counter(a.fate for a in attempts))}; paid after the hold: {len(late)} "
        f"{dict(Counter(by_order_status(orders, a) for a in late))}; expire runs {len(runs)} "
        f"+ {len(job_runs)} in process; {seen.snapshots} snapshots; orders "
        f"{dict(Counter(o.status for o in orders))}; vouchers {len(vouchers)}; last units {left}"
    )
    assert all(run.returncode == 0 for run in runs), [r.stdout + r.stderr for r in runs if r.returncode]
    assert not [done.notes for done in job_runs if done.notes or done.provider_errors]
    assert len(runs) >= 2 and len(job_runs) >= 5 and seen.snapshots >= 20, (len(runs), seen.snapshots)

    # Never more than 50 units taken, and the units taken always the units held.
    assert seen.max_claimed <= QUANTITY, seen.max_claimed
    assert not seen.problems, seen.problems[:10]
    # The traffic did what it says: more holds than units, holds that ran out, late payments.
    assert len(attempts) > QUANTITY, len(attempts)
    assert sum(o.status == "expired" for o in orders) >= 5, Counter(o.status for o in orders)
    assert len(late) >= 8, len(late)

    # Every order settled, each as its intent at localstripe says.
    by_order = {o.id: o for o in orders}
    voucher_of = {v.order_id: v for v in vouchers}
    assert len(voucher_of) == len(vouchers), "an order with two vouchers"
    assert all(v.order_id in by_order and v.refunded_at is None for v in vouchers)
    refunds_of: dict[int, list[Refund]] = defaultdict(list)
    for refund in refunds:
        refunds_of[refund.order_id].append(refund)
    kept: Counter[int] = Counter()
    for order in orders:
        assert order.intent_id is not None, order.id
        taken = [c for c in charges.get(order.intent_id, []) if c.status == "succeeded"]
        assert len(taken) <= 1, f"order {order.id}: its intent was charged {len(taken)} times"
        if not taken:
            assert order.status in RELEASED, f"order {order.id} is {order.status}, yet nothing was charged"
            assert order.id not in voucher_of and not refunds_of[order.id]
            # Released with its intent cancelled: no one can pay it afterwards.
            assert intent_states[order.intent_id] == "canceled", (order.id, order.status)
        elif order.status == "paid":
            assert order.id in voucher_of, f"order {order.id}: paid without a voucher"
            assert taken[0].amount == order.amount_minor and taken[0].amount_refunded == 0
            assert not refunds_of[order.id]
            kept[order.user_id] += 1
        else:  # paid after its unit went back to stock and was sold: the money goes back
            assert order.status == "refunded", f"order {order.id} is {order.status}, yet was charged"
            assert order.id not in voucher_of
            assert [(r.amount_minor, r.status) for r in refunds_of[order.id]] == [
                (order.amount_minor, "succeeded")
            ]
            assert taken[0].amount_refunded == order.amount_minor, taken
    assert max(kept.values()) == 1, "a user charged twice"
    paid = sum(kept.values())
    assert len(vouchers) == min(QUANTITY, paid) == paid
    # Released holds went back to stock: nothing pending, every unit left is for sale.
    assert not [o for o in orders if o.status == "pending"]
    assert deal.quantity_claimed == len(vouchers)
    assert stock_left + len(vouchers) == QUANTITY, (stock_left, len(vouchers))
    assert units.balanced, units.problems()
    assert money.ok, (money.books, money.problems)

    assert sold_out["stock_left"] == 0 and deal_at_end.quantity_claimed == QUANTITY
    assert units_at_end.balanced, units_at_end.problems()
    assert money_at_end.ok, (money_at_end.books, money_at_end.problems)
    assert [b.paid_in - b.refunded for b in money_at_end.books] == [QUANTITY * 900]
    with engine.connect() as conn:
        issued = conn.execute(
            text("SELECT count(*) FROM vouchers WHERE deal_id = :d"), {"d": deal_id}
        ).scalar()
    assert issued == QUANTITY
