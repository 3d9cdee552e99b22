"""Who may call which payment endpoint (orders, refunds, the provider's webhook, settlement
statements): every endpoint x every kind of caller, the exact status, and nothing written by
a refused call. tests/lbs/api/test_authz_matrix.py checks that its matrices and this one
together hold every route."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR
from tests.deals_factory import bearer, make_merchant, make_user
from tests.payments_support import signed_event
from tests.prepaid_factory import WEBHOOK_SECRET, intent_event, order, paid_order, prepaid_deal
from tests.problems import assert_problem

CALLERS = [
    "anonymous", "malformed", "bad-user-token", "bad-merchant-key", "revoked-key",
    "owner", "other-user", "A", "B", "operator",
]  # fmt: skip


@dataclass(frozen=True)
class World:
    deal_a: int  # A's prepaid deal
    order_a: int  # the owner's, pending
    voucher_a: int  # the owner's, paid, unused
    refunded_a: int  # the owner's, refunded
    period: str  # a week in which A earned (the other user's voucher, redeemed)
    headers: dict[str, dict[str, str]]


@pytest.fixture
def world(pay_client: FlaskClient) -> World:
    client = pay_client
    merchant_a, key_a, deal = prepaid_deal(client, quantity_total=100, per_user_limit=10)
    _, key_b = make_merchant(client)
    revoked = client.post(f"/v1/merchants/{merchant_a}/api-keys", headers=OPERATOR).get_json()
    gone = client.delete(f"/v1/merchants/{merchant_a}/api-keys/{revoked['key_id']}", headers=OPERATOR)
    assert gone.status_code == 204
    owner, other = make_user(client)[1], make_user(client)[1]
    pending = order(client, owner, deal["id"])
    kept = paid_order(client, owner, deal["id"])
    refunded = paid_order(client, owner, deal["id"])
    refund = client.post(f"/v1/me/vouchers/{refunded['voucher_id']}/refund", headers=bearer(owner))
    assert refund.status_code == 200, refund.get_json()
    others = paid_order(client, other, deal["id"])
    code = client.get(f"/v1/me/vouchers/{others['voucher_id']}", headers=bearer(other)).get_json()["code"]
    counter = client.post("/v1/merchant/vouchers/redeem", json={"code": code}, headers=bearer(key_a))
    assert counter.status_code == 200, counter.get_json()
    period = client.get("/v1/merchant/settlements", headers=bearer(key_a)).get_json()["items"][0]["period"]
    headers = {
        "anonymous": {},
        "malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
        "bad-user-token": bearer("lbs_ut_" + "x" * 43),
        "bad-merchant-key": bearer("lbs_mk_" + "x" * 43),
        "revoked-key": bearer(revoked["api_key"]),
        "owner": bearer(owner),
        "other-user": bearer(other),
        "A": bearer(key_a),
        "B": bearer(key_b),
        "operator": OPERATOR,
    }
    return World(deal["id"], pending["id"], kept["voucher_id"], refunded["voucher_id"], period, headers)


def _webhook(secret: str) -> tuple[bytes, dict[str, str]]:
    """An event about an intent lbs never made: applied (200) and changing no order."""
    return signed_event(intent_event("payment_intent.succeeded", "pi_unknown_to_lbs"), secret)


# endpoint id -> (method, path, body: JSON or raw bytes, extra headers)
Request = tuple[str, str, dict[str, Any] | bytes | None, dict[str, str]]
ENDPOINTS: dict[str, Callable[[World], Request]] = {
    "order": lambda w: ("POST", f"/v1/deals/{w.deal_a}/orders", None, {"Idempotency-Key": "authz-order"}),
    "my-orders": lambda w: ("GET", "/v1/me/orders", None, {}),
    "my-order": lambda w: ("GET", f"/v1/me/orders/{w.order_a}", None, {}),
    "test-payment": lambda w: ("POST", f"/v1/me/orders/{w.order_a}/test-payment", {"card": "visa"}, {}),
    "refund": lambda w: ("POST", f"/v1/me/vouchers/{w.voucher_a}/refund", None, {}),
    "get-refund": lambda w: ("GET", f"/v1/me/vouchers/{w.refunded_a}/refund", None, {}),
    "webhook": lambda w: ("POST", "/v1/payments/stripe/webhook", *_webhook(WEBHOOK_SECRET)),
    "webhook-bad-signature": lambda w: ("POST", "/v1/payments/stripe/webhook", *_webhook("whsec_forged")),
    "settlements": lambda w: ("GET", "/v1/merchant/settlements", None, {}),
    "settlement": lambda w: ("GET", f"/v1/merchant/settlements/{w.period}", None, {}),
}

USERS_OWN = {"owner": 200, "other-user": 404}  # the owner's order or voucher; another's is a 404
EXPECTED: dict[str, dict[str, int]] = {
    "order": {"owner": 201, "other-user": 201},
    "my-orders": {"owner": 200, "other-user": 200},
    "my-order": USERS_OWN,
    "test-payment": USERS_OWN,
    "refund": USERS_OWN,
    "get-refund": USERS_OWN,
    # Stripe calls it: no credentials, only its signature, checked whoever calls.
    "webhook": dict.fromkeys(CALLERS, 200),
    "webhook-bad-signature": dict.fromkeys(CALLERS, 400),
    "settlements": {"A": 200, "B": 200},  # the caller's own (B's: empty)
    "settlement": {"A": 200, "B": 404},  # B earned nothing that week
}
# Everyone not listed is a 401: no credentials or unknown ones, a revoked key, a merchant key
# on a user's endpoints, a user token on a merchant's, the operator's token on either.
CASES = [
    pytest.param(endpoint, caller, EXPECTED[endpoint].get(caller, 401), id=f"{endpoint}-{caller}")
    for endpoint in ENDPOINTS
    for caller in CALLERS
]


def _snapshot(engine: Engine) -> tuple[Any, ...]:
    """Every row the endpoints above could write or change."""
    with engine.connect() as c:
        return (
            c.execute(text("SELECT id, status, intent_id, paid_at FROM orders ORDER BY id")).all(),
            c.execute(text("SELECT id, redeemed_at, refunded_at, earned_at FROM vouchers ORDER BY id")).all(),
            c.execute(text("SELECT id, status FROM refunds ORDER BY id")).all(),
            c.execute(text("SELECT id FROM provider_events ORDER BY id")).all(),
            c.execute(text("SELECT id, quantity_claimed FROM deals ORDER BY id")).all(),
            c.execute(text("SELECT deal_id, user_id, claims FROM user_deal_claims ORDER BY 1, 2")).all(),
            c.execute(text("SELECT count(*) FROM settlement_payouts")).scalar_one(),
            c.execute(text("SELECT count(*) FROM events")).scalar_one(),
        )


@pytest.mark.parametrize(("endpoint", "caller", "expected"), CASES)
def test_access_matrix(
    endpoint: str, caller: str, expected: int, world: World, pay_client: FlaskClient, engine: Engine
) -> None:
    method, path, body, extra = ENDPOINTS[endpoint](world)
    before = _snapshot(engine)
    raw = {"data": body} if isinstance(body, bytes) else {"json": body}

    response = pay_client.open(path, method=method, headers={**world.headers[caller], **extra}, **raw)

    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected >= 400:
        problem = assert_problem(response, expected)
        assert "client_secret" not in str(problem) and "code" not in problem
        assert _snapshot(engine) == before, "a refused request changed something"
        if endpoint == "webhook-bad-signature":
            assert problem["field"] == "Stripe-Signature"


@pytest.mark.parametrize("endpoint", [e for e, expected in EXPECTED.items() if expected is USERS_OWN])
def test_another_users_order_or_voucher_is_as_if_it_did_not_exist(
    endpoint: str, world: World, pay_client: FlaskClient
) -> None:
    """The other user's 404 says no more than one for ids never made (the ids aside)."""
    unknown = 2**62
    answers = []
    for w in (world, replace(world, order_a=unknown, voucher_a=unknown, refunded_a=unknown)):
        method, path, body, extra = ENDPOINTS[endpoint](w)
        response = pay_client.open(
            path, method=method, json=body, headers={**w.headers["other-user"], **extra}
        )
        answers.append({k: re.sub(r"\d+", "N", str(v)) for k, v in assert_problem(response, 404).items()})
    assert answers[0] == answers[1]
