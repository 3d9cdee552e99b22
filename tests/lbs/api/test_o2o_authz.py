"""Who may call which deal, voucher and event endpoint: a matrix of endpoints by callers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR
from tests.deals_factory import bearer, make_merchant, make_user
from tests.problems import assert_problem

SECRET = "authz-test-secret-key-0123456789abcdef"
CALLERS = ["anonymous", "bad-user-token", "bad-merchant-key", "owner", "other-user", "A", "B", "operator"]


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(secret_key=SECRET)


def _deal_body(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "title": "Two buns for one",
        "kind": "fixed_price",
        "currency": "EUR",
        "list_price_minor": 600,
        "deal_price_minor": 300,
        "per_user_limit": 10,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(),
        "publish": True,
        **overrides,
    }


def _deal(client: FlaskClient, key: str) -> int:
    response = client.post("/v1/merchant/deals", json=_deal_body(), headers=bearer(key))
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["id"])


def _claim(client: FlaskClient, token: str, deal_id: int) -> dict[str, Any]:
    headers = {**bearer(token), "Idempotency-Key": str(uuid.uuid4())}
    response = client.post(f"/v1/deals/{deal_id}/claim", headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


@dataclass(frozen=True)
class World:
    merchant_a: int
    merchant_b: int
    deal_a: int
    deal_b: int
    voucher_a: dict[str, Any]  # the owner's, on A's deal
    voucher_b: dict[str, Any]  # the other user's, on B's deal
    headers: dict[str, dict[str, str]]


@pytest.fixture
def world(client: FlaskClient) -> World:
    merchant_a, key_a = make_merchant(client, lat=60.1699, name="Bakery A", category="bakery")
    merchant_b, key_b = make_merchant(client, lat=60.1709, name="Bakery B", category="bakery")
    deal_a, deal_b = _deal(client, key_a), _deal(client, key_b)
    owner, other = make_user(client)[1], make_user(client)[1]
    headers = {
        "anonymous": {},
        "bad-user-token": bearer("lbs_ut_" + "x" * 43),
        "bad-merchant-key": bearer("lbs_mk_" + "x" * 43),
        "owner": bearer(owner),
        "other-user": bearer(other),
        "A": bearer(key_a),
        "B": bearer(key_b),
        "operator": OPERATOR,
    }
    return World(
        merchant_a, merchant_b, deal_a, deal_b, _claim(client, owner, deal_a), _claim(client, other, deal_b),
        headers,
    )  # fmt: skip


def _snapshot(engine: Engine) -> tuple[Any, ...]:
    """Every row the endpoints below could write or change."""
    with engine.connect() as c:
        return (
            c.execute(text("SELECT id, title, status, quantity_claimed FROM deals ORDER BY id")).all(),
            c.execute(text("SELECT id, redeemed_at FROM vouchers ORDER BY id")).all(),
            c.execute(text("SELECT count(*) FROM events")).scalar_one(),
            c.execute(text("SELECT count(*) FROM user_deal_claims")).scalar_one(),
        )


def _events_body(merchant_id: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    event = {"id": "e1", "kind": "visit", "merchant_id": merchant_id, "occurred_at": now}
    return {"events": [event]}


# endpoint id -> (method, path, json body, extra headers) built from the world
Request = tuple[str, str, dict[str, Any] | None, dict[str, str]]
ENDPOINTS: dict[str, Callable[[World], Request]] = {
    "desk-list-deals": lambda w: ("GET", "/v1/merchant/deals", None, {}),
    "desk-create-deal": lambda w: ("POST", "/v1/merchant/deals", _deal_body(), {}),
    "desk-get-deal": lambda w: ("GET", f"/v1/merchant/deals/{w.deal_a}", None, {}),
    "desk-patch-deal": lambda w: ("PATCH", f"/v1/merchant/deals/{w.deal_a}", {"title": "Mine now"}, {}),
    "desk-pause-deal": lambda w: ("POST", f"/v1/merchant/deals/{w.deal_a}/pause", None, {}),
    "desk-vouchers": lambda w: ("GET", "/v1/merchant/vouchers", None, {}),
    "desk-redeem": lambda w: ("POST", "/v1/merchant/vouchers/redeem", {"code": w.voucher_a["code"]}, {}),
    "desk-voucher-key": lambda w: ("GET", "/v1/merchant/voucher-key", None, {}),
    "me-vouchers": lambda w: ("GET", "/v1/me/vouchers", None, {}),
    "me-voucher": lambda w: ("GET", f"/v1/me/vouchers/{w.voucher_a['id']}", None, {}),
    "me-voucher-qr": lambda w: ("GET", f"/v1/me/vouchers/{w.voucher_a['id']}/qr.svg", None, {}),
    "claim": lambda w: ("POST", f"/v1/deals/{w.deal_a}/claim", None, {"Idempotency-Key": "authz-claim"}),
    "events": lambda w: ("POST", "/v1/events", _events_body(w.merchant_a), {}),
}

_DESK_OWN = {"A": 200, "B": 404}  # on A's deal or voucher code
_DESK_ANY = {"A": 200, "B": 200}  # on the caller's own collection
EXPECTED: dict[str, dict[str, int]] = {
    "desk-list-deals": _DESK_ANY,
    "desk-create-deal": {"A": 201, "B": 201},
    "desk-get-deal": _DESK_OWN,
    "desk-patch-deal": _DESK_OWN,
    "desk-pause-deal": _DESK_OWN,
    "desk-vouchers": _DESK_ANY,
    "desk-redeem": _DESK_OWN,
    "desk-voucher-key": _DESK_ANY,
    "me-vouchers": {"owner": 200, "other-user": 200},
    "me-voucher": {"owner": 200, "other-user": 404},
    "me-voucher-qr": {"owner": 200, "other-user": 404},
    "claim": {"owner": 201, "other-user": 201},
    "events": {"owner": 200, "other-user": 200},
}
# Everyone not listed is a 401: no credentials, unknown ones, a user token on the merchant
# desk, a merchant key on user endpoints, and the operator token (it is not a merchant's key
# nor a user's token).
CASES = [
    pytest.param(endpoint, caller, EXPECTED[endpoint].get(caller, 401), id=f"{endpoint}-{caller}")
    for endpoint in ENDPOINTS
    for caller in CALLERS
]


@pytest.mark.parametrize(("endpoint", "caller", "expected"), CASES)
def test_access_matrix(
    endpoint: str, caller: str, expected: int, world: World, client: FlaskClient, engine: Engine
) -> None:
    method, path, body, extra = ENDPOINTS[endpoint](world)
    before = _snapshot(engine)

    response = client.open(path, method=method, json=body, headers={**world.headers[caller], **extra})

    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected >= 400:
        problem = assert_problem(response, expected)
        assert "code" not in problem and "qr_payload" not in problem
        assert _snapshot(engine) == before, "a refused request changed something"


def test_a_user_sees_only_their_own_vouchers(world: World, client: FlaskClient) -> None:
    owner = client.get("/v1/me/vouchers", headers=world.headers["owner"]).get_json()["items"]
    other = client.get("/v1/me/vouchers", headers=world.headers["other-user"]).get_json()["items"]

    assert [v["id"] for v in owner] == [world.voucher_a["id"]]
    assert [v["id"] for v in other] == [world.voucher_b["id"]]
    for status in ("issued", "redeemed", "expired"):
        items = client.get(f"/v1/me/vouchers?status={status}", headers=world.headers["other-user"])
        assert world.voucher_a["id"] not in [v["id"] for v in items.get_json()["items"]]
    qr = client.get(f"/v1/me/vouchers/{world.voucher_a['id']}/qr.png", headers=world.headers["other-user"])
    assert_problem(qr, 404)


def test_a_merchant_lists_only_its_own_vouchers(world: World, client: FlaskClient) -> None:
    def listed(caller: str, query: str = "") -> list[int]:
        response = client.get(f"/v1/merchant/vouchers{query}", headers=world.headers[caller])
        assert response.status_code == 200
        return [v["id"] for v in response.get_json()["items"]]

    assert listed("A") == [world.voucher_a["id"]]
    assert listed("B") == [world.voucher_b["id"]]
    assert listed("B", f"?deal_id={world.deal_a}") == []
    assert listed("A", f"?deal_id={world.deal_b}") == []
    for status in ("issued", "redeemed", "expired"):
        assert world.voucher_a["id"] not in listed("B", f"?status={status}")


def test_a_merchant_cannot_redeem_another_merchants_voucher(world: World, client: FlaskClient) -> None:
    code = world.voucher_a["code"]

    refused = client.post("/v1/merchant/vouchers/redeem", json={"code": code}, headers=world.headers["B"])

    assert_problem(refused, 404)
    held = client.get(f"/v1/me/vouchers/{world.voucher_a['id']}", headers=world.headers["owner"]).get_json()
    assert (held["status"], held["redeemed_at"]) == ("issued", None)
    redeemed = client.post("/v1/merchant/vouchers/redeem", json={"code": code}, headers=world.headers["A"])
    assert redeemed.status_code == 200
    assert redeemed.get_json()["id"] == world.voucher_a["id"]


def test_a_merchant_cannot_change_another_merchants_deal(
    world: World, client: FlaskClient, engine: Engine
) -> None:
    before = _snapshot(engine)
    b = world.headers["B"]

    for action in ("publish", "pause", "resume", "end"):
        assert_problem(client.post(f"/v1/merchant/deals/{world.deal_a}/{action}", headers=b), 404)
    assert_problem(
        client.patch(f"/v1/merchant/deals/{world.deal_a}", json={"quantity_total": 1}, headers=b), 404
    )

    assert _snapshot(engine) == before
    listed = client.get("/v1/merchant/deals", headers=b).get_json()["items"]
    assert [d["id"] for d in listed] == [world.deal_b]


def test_credentials_are_checked_before_the_body(world: World, client: FlaskClient) -> None:
    # An invalid body with no credentials is still a 401, so nothing about the schema leaks.
    assert_problem(client.post("/v1/merchant/deals", json={"title": 5}), 401)
    assert_problem(client.post("/v1/merchant/vouchers/redeem", json={"nope": 1}), 401)
    assert_problem(client.post("/v1/events", json={"events": []}), 401)
    assert_problem(client.post(f"/v1/deals/{world.deal_a}/claim"), 401)
