"""Prepaid deals through a real gunicorn on localstripe: its settings, orders and payments over
HTTP, `lbs payments expire` as its own process, and what localstripe holds of each intent."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import stripe
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from lbs.payments.stripe_adapter import StripeProvider
from lbs.services.users import create_user
from tests.conftest import TEST_SECRET_KEY
from tests.e2e.server import REPO, Server
from tests.e2e.test_claim_contention import User, ok
from tests.payments_support import STRIPE_TEST_KEY, STRIPE_TEST_WEBHOOK_SECRET

WEBHOOK_PATH = "/v1/payments/stripe/webhook"
PRICE_MINOR = 900
EXPIRE_TIMEOUT_S = 60.0


def stripe_env(localstripe: str, hold_s: float = 600.0) -> dict[str, str]:
    """The workers' (and `lbs payments expire`'s) settings: payments on localstripe, limits
    out of the way (400 users from one address), one secret key for every process, so that
    a voucher issued by the job has a code its merchant can redeem."""
    return {
        "LBS_SECRET_KEY": TEST_SECRET_KEY,
        "LBS_PAYMENT_PROVIDER": "stripe",
        "LBS_STRIPE_SECRET_KEY": STRIPE_TEST_KEY,
        "LBS_STRIPE_WEBHOOK_SECRET": STRIPE_TEST_WEBHOOK_SECRET,
        "LBS_STRIPE_API_BASE": localstripe,
        "LBS_PAYMENT_HOLD_S": str(hold_s),
        "LBS_RATE_LIMIT_CLAIM": "100000/minute",
        "LBS_RATE_LIMIT_REDEEM": "100000/minute",
        "LBS_RATE_LIMIT_NEW_USERS": "100000/minute",
        "LBS_LOG_LEVEL": "WARNING",
        # Money, not latency, is checked here: a request queued behind the burst on a busy
        # machine (CI's two cores) must not be answered 503 for its deadline.
        "LBS_REQUEST_TIMEOUT_S": "30",
    }


def provider(localstripe: str) -> StripeProvider:
    """lbs's own adapter in the test process: the paying client's side (a card confirmed at the
    provider, as Stripe.js would) and the reads of intents and refunds."""
    return StripeProvider(STRIPE_TEST_KEY, STRIPE_TEST_WEBHOOK_SECRET, localstripe)


def users_of(engine: Engine, n: int) -> list[User]:
    """n users made in the database at once (POST /v1/users one by one is not what is tested,
    and took half a minute for 400 on a busy machine)."""
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        made = [create_user(session, now) for _ in range(n)]
    return [User(user_id, token) for user_id, token in made]


def prepaid_deal(server: Server, api_key: str, quantity: int, **overrides: Any) -> int:
    now = datetime.now(UTC)
    body = {
        "title": "Prepaid ramen -40 %",
        "kind": "percent_off",
        "currency": "EUR",
        "list_price_minor": 1500,
        "deal_price_minor": PRICE_MINOR,
        "quantity_total": quantity,
        "per_user_limit": 1,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=1)).isoformat(),
        "payment": "prepaid",
        "publish": True,
        **overrides,
    }
    deal = ok(server.post("/v1/merchant/deals", "deal", {"Authorization": f"Bearer {api_key}"}, body), 201)
    assert deal["state"] == "live" and deal["payment"] == "prepaid", deal
    return int(deal["id"])


def place_order(server: Server, user: User, deal_id: int, tag: str) -> requests.Response:
    headers = {**user.auth, "Idempotency-Key": str(uuid.uuid4())}
    return server.post(f"/v1/deals/{deal_id}/orders", tag, headers)


def test_payment(server: Server, user: User, order_id: int, card: str, tag: str) -> requests.Response:
    return server.post(f"/v1/me/orders/{order_id}/test-payment", tag, user.auth, {"card": card})


test_payment.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def paid_voucher(server: Server, user: User, deal_id: int, tag: str) -> dict[str, Any]:
    """Order and pay with the test visa: the voucher (with its code)."""
    order = ok(place_order(server, user, deal_id, f"{tag}-order"), 201)
    paid = ok(test_payment(server, user, order["id"], "visa", f"{tag}-pay"), 200)
    assert paid["status"] == "paid" and paid["voucher_id"] is not None, paid
    return ok(server.get(f"/v1/me/vouchers/{paid['voucher_id']}", f"{tag}-voucher", user.auth), 200)


def run_expire(database_url: str, localstripe: str) -> subprocess.CompletedProcess[str]:
    """`lbs payments expire` as an operator's cron runs it: a process of its own, now."""
    command, environ = _expire_command(database_url, localstripe, None)
    return subprocess.run(command, cwd=REPO, env=environ, capture_output=True, text=True,
                          timeout=EXPIRE_TIMEOUT_S, check=False)  # fmt: skip


def start_expire(database_url: str, localstripe: str, at: datetime | None = None) -> subprocess.Popen[str]:
    """`lbs payments expire [--at]` started, not waited for."""
    command, environ = _expire_command(database_url, localstripe, at)
    return subprocess.Popen(command, cwd=REPO, env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _expire_command(
    database_url: str, localstripe: str, at: datetime | None
) -> tuple[list[str], dict[str, str]]:
    environ = {**os.environ, **stripe_env(localstripe), "LBS_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "lbs.cli", "payments", "expire"]
    if at is not None:
        command += ["--at", at.isoformat()]
    return command, environ


@dataclass(frozen=True)
class Charge:
    id: str
    intent_id: str
    status: str
    amount: int
    amount_refunded: int


def charges_of(localstripe: str, intent_ids: set[str]) -> dict[str, list[Charge]]:
    """Every charge localstripe made on these intents, failed ones included (localstripe lists
    charges unfiltered: it may be shared with other test sessions, so this filters)."""
    client = stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": localstripe})
    found: dict[str, list[Charge]] = defaultdict(list)
    for charge in client.v1.charges.list({"limit": 100}).auto_paging_iter():
        data = charge.to_dict()
        intent = data.get("payment_intent")
        intent_id = intent.get("id") if isinstance(intent, dict) else intent
        if intent_id in intent_ids:
            amounts = int(data["amount"]), int(data["amount_refunded"])
            found[intent_id].append(Charge(data["id"], intent_id, data["status"], *amounts))
    return found
