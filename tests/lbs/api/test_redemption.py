"""Redemption at the counter, the merchant's voucher list and its offline QR key (docs/deals.md)."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from lbs.models import Voucher
from lbs.services.voucher_codes import check_qr_payload
from tests.deals_factory import bearer, make_merchant, make_user
from tests.problems import assert_problem

SECRET = "redemption-test-secret-key-0123456789abcdef"
PROBLEMS = "https://lbs.dev/problems/"
HOLDER_ONLY = {"code", "qr_payload", "qr_svg_url", "qr_png_url"}


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(secret_key=SECRET)


def _deal(client: FlaskClient, key: str, **overrides: Any) -> int:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "title": "Coffee and bun",
        "kind": "fixed_price",
        "currency": "EUR",
        "list_price_minor": 800,
        "deal_price_minor": 500,
        "per_user_limit": 100,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(),
        "publish": True,
        **overrides,
    }
    response = client.post("/v1/merchant/deals", json=body, headers=bearer(key))
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["id"])


def _voucher(client: FlaskClient, token: str, deal_id: int) -> dict[str, Any]:
    headers = {**bearer(token), "Idempotency-Key": str(uuid.uuid4())}
    response = client.post(f"/v1/deals/{deal_id}/claim", headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def _redeem(client: FlaskClient, key: str, code: str) -> TestResponse:
    return client.post("/v1/merchant/vouchers/redeem", json={"code": code}, headers=bearer(key))


def _holder_view(client: FlaskClient, token: str, voucher_id: int) -> dict[str, Any]:
    return dict(client.get(f"/v1/me/vouchers/{voucher_id}", headers=bearer(token)).get_json())


def _events(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(text("SELECT * FROM events WHERE kind = :k ORDER BY id"), {"k": kind}).mappings()
        return [dict(r) for r in rows]


def _forgiving_variant(display: str) -> str:
    """The code as a person might type it: lower case, odd spacing, I/L for 1 and O for 0."""
    swaps = {"1": ["I", "l", "i", "L"], "0": ["O", "o"]}
    out, used = [], {"1": 0, "0": 0}
    for ch in display.replace("-", ""):
        if ch in swaps:
            out.append(swaps[ch][used[ch] % len(swaps[ch])])
            used[ch] += 1
        else:
            out.append(ch.lower())
    typed = "".join(out)
    return f" {typed[:3]} {typed[3:6]}-{typed[6:9]} - {typed[9:]} "


def test_redeem_a_code_typed_forgivingly(client: FlaskClient) -> None:
    _, key = make_merchant(client, name="A", category="cafe")
    deal_id = _deal(client, key)
    token = make_user(client)[1]
    # A code with a 1 or a 0 in it, so that the look-alike substitutions are exercised.
    for _ in range(30):
        voucher = _voucher(client, token, deal_id)
        if {"0", "1"} & set(voucher["code"]):
            break
    else:
        pytest.fail("30 codes without a 0 or 1")
    typed = _forgiving_variant(voucher["code"])
    assert typed.replace(" ", "").replace("-", "") != voucher["code"].replace("-", "")

    response = _redeem(client, key, typed)

    assert response.status_code == 200, (typed, response.get_data(as_text=True))
    body = response.get_json()
    assert (body["id"], body["status"]) == (voucher["id"], "redeemed")
    assert body["redeemed_at"] is not None
    assert not HOLDER_ONLY & set(body)
    assert _holder_view(client, token, voucher["id"])["status"] == "redeemed"


def test_redeem_twice_is_409_with_redeemed_at(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client, name="A", category="cafe")
    voucher = _voucher(client, make_user(client)[1], _deal(client, key))
    first = _redeem(client, key, voucher["code"])
    assert first.status_code == 200

    second = _redeem(client, key, voucher["code"].lower())

    body = assert_problem(second, 409)
    assert body["type"] == PROBLEMS + "voucher-already-redeemed"
    assert datetime.fromisoformat(body["redeemed_at"]) == datetime.fromisoformat(
        first.get_json()["redeemed_at"]
    )
    assert len(_events(engine, "redemption")) == 1


def test_redemption_writes_one_redemption_event(client: FlaskClient, engine: Engine) -> None:
    merchant_id, key = make_merchant(client, name="A", category="cafe")
    deal_id = _deal(client, key)
    voucher = _voucher(client, make_user(client)[1], deal_id)
    claim_event = _events(engine, "claim")[0]

    assert _redeem(client, key, voucher["code"]).status_code == 200

    rows = _events(engine, "redemption")
    assert len(rows) == 1
    row = rows[0]
    assert (row["voucher_id"], row["deal_id"], row["merchant_id"]) == (voucher["id"], deal_id, merchant_id)
    assert (row["user_id"], row["source"]) == (claim_event["user_id"], "server")


def test_another_merchants_code_is_the_same_404_as_an_unknown_code(
    client: FlaskClient, engine: Engine
) -> None:
    _, key_a = make_merchant(client, name="A", category="cafe")
    _, key_b = make_merchant(client, name="B", category="cafe")
    token = make_user(client)[1]
    voucher = _voucher(client, token, _deal(client, key_a))

    foreign = _redeem(client, key_b, voucher["code"])
    unknown = _redeem(
        client, key_b, "ZZZZ-ZZZZ-ZZZZ" if voucher["code"] != "ZZZZ-ZZZZ-ZZZZ" else "YYYYYYYYYYYY"
    )

    assert_problem(foreign, 404)
    assert_problem(unknown, 404)
    assert foreign.get_json() == unknown.get_json()
    assert _holder_view(client, token, voucher["id"])["status"] == "issued"
    assert _events(engine, "redemption") == []


@pytest.mark.parametrize(
    "code",
    ["", "ABC", "7KQ2-M9XD-4WTRX", "7KQ2M9XD4WTRX", "UUUU-UUUU-UUUU", "!!!!", "7KQ2_M9XD_4WTR", "x" * 65],
    ids=["empty", "3-chars", "13-chars", "13-chars-bare", "letter-U", "punctuation", "underscores", "65"],
)
def test_a_malformed_code_is_400_naming_code(code: str, client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client, name="A", category="cafe")
    token = make_user(client)[1]
    voucher = _voucher(client, token, _deal(client, key))

    body = assert_problem(_redeem(client, key, code), 400, field="code")

    assert "code" in body["detail"]
    assert _events(engine, "redemption") == []
    assert _holder_view(client, token, voucher["id"])["status"] == "issued"


@pytest.mark.parametrize(
    "code",
    ["", "ABC", "UUUU-UUUU-UUUU", "!!!!", "x" * 65],
    ids=["empty", "3-chars", "letter-U", "punctuation", "65-chars"],
)
def test_a_malformed_code_is_told_the_allowed_format(code: str, client: FlaskClient) -> None:
    """docs/deals.md: wrong length or letters is a 400 naming code *with the allowed format*."""
    _, key = make_merchant(client, name="A", category="cafe")

    body = assert_problem(_redeem(client, key, code), 400, field="code")

    assert "12 characters" in body["detail"], body


def test_a_body_without_a_code_is_400(client: FlaskClient) -> None:
    _, key = make_merchant(client, name="A", category="cafe")

    assert_problem(client.post("/v1/merchant/vouchers/redeem", json={}, headers=bearer(key)), 400, "code")


def test_an_expired_voucher_is_409_and_stays_unredeemed(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client, name="A", category="cafe")
    token = make_user(client)[1]
    voucher = _voucher(client, token, _deal(client, key))
    past = datetime.now(UTC) - timedelta(minutes=5)
    with Session(engine) as session, session.begin():
        session.execute(update(Voucher).where(Voucher.id == voucher["id"]).values(expires_at=past))

    response = _redeem(client, key, voucher["code"])

    body = assert_problem(response, 409)
    assert body["type"] == PROBLEMS + "voucher-expired"
    assert datetime.fromisoformat(body["expires_at"]) == past
    held = _holder_view(client, token, voucher["id"])
    assert (held["status"], held["redeemed_at"]) == ("expired", None)
    listed = client.get("/v1/me/vouchers?status=expired", headers=bearer(token)).get_json()["items"]
    assert [v["id"] for v in listed] == [voucher["id"]]
    assert _events(engine, "redemption") == []


def test_a_voucher_stays_redeemable_after_its_deal_ended(client: FlaskClient) -> None:
    _, key = make_merchant(client, name="A", category="cafe")
    deal_id = _deal(client, key)
    voucher = _voucher(client, make_user(client)[1], deal_id)
    assert client.post(f"/v1/merchant/deals/{deal_id}/end", headers=bearer(key)).status_code == 200

    response = _redeem(client, key, voucher["code"])

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "redeemed"


def test_two_counters_redeeming_at_once_get_one_200_and_one_409(
    app: OpenAPI, client: FlaskClient, engine: Engine
) -> None:
    _, key = make_merchant(client, name="A", category="cafe")
    voucher = _voucher(client, make_user(client)[1], _deal(client, key))
    start = threading.Barrier(4)

    def attempt(_: int) -> int:
        own = app.test_client()
        start.wait(timeout=30)
        return _redeem(own, key, voucher["code"]).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(attempt, range(4)))

    assert statuses == [200, 409, 409, 409]
    assert len(_events(engine, "redemption")) == 1


def test_the_redeem_rate_limit_counts_per_key(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(secret_key=SECRET, rate_limit_redeem="3/minute").test_client()
    _, key_a = make_merchant(client, name="A", category="cafe")
    _, key_b = make_merchant(client, name="B", category="cafe")
    token = make_user(client)[1]
    voucher = _voucher(client, token, _deal(client, key_a))
    for guess in ["AAAA-AAAA-AAAA", "BBBB-BBBB-BBBB", "CCCC-CCCC-CCCC"]:
        assert _redeem(client, key_a, guess).status_code == 404

    limited = _redeem(client, key_a, voucher["code"])

    assert_problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert _holder_view(client, token, voucher["id"])["status"] == "issued"
    # Merchant B's key has its own count.
    for guess in ["DDDD-DDDD-DDDD", "EEEE-EEEE-EEEE", "FFFF-FFFF-FFFF"]:
        assert _redeem(client, key_b, guess).status_code == 404
    assert _redeem(client, key_b, "GGGG-GGGG-GGGG").status_code == 429


def test_the_merchants_voucher_list(client: FlaskClient) -> None:
    merchant_a, key_a = make_merchant(client, name="A", category="cafe")
    _, key_b = make_merchant(client, name="B", category="cafe")
    token = make_user(client)[1]
    deal_1, deal_2, deal_b = _deal(client, key_a), _deal(client, key_a, title="Tea"), _deal(client, key_b)
    v1 = _voucher(client, token, deal_1)
    v2 = _voucher(client, token, deal_2)
    v3 = _voucher(client, make_user(client)[1], deal_1)
    _voucher(client, token, deal_b)
    assert _redeem(client, key_a, v1["code"]).status_code == 200

    def listed(query: str = "") -> list[tuple[int, str]]:
        response = client.get(f"/v1/merchant/vouchers{query}", headers=bearer(key_a))
        assert response.status_code == 200, response.get_data(as_text=True)
        items = response.get_json()["items"]
        for item in items:
            assert not HOLDER_ONLY & set(item), item
            assert item["merchant_id"] == merchant_a
        return [(v["id"], v["status"]) for v in items]

    assert listed() == [(v3["id"], "issued"), (v2["id"], "issued"), (v1["id"], "redeemed")]
    assert listed(f"?deal_id={deal_1}") == [(v3["id"], "issued"), (v1["id"], "redeemed")]
    assert listed("?status=redeemed") == [(v1["id"], "redeemed")]
    assert listed(f"?deal_id={deal_2}&status=issued") == [(v2["id"], "issued")]
    assert listed(f"?deal_id={deal_b}") == []
    assert listed("?limit=1")[0][0] == v3["id"]
    # Pages by cursor, bound to deal_id and status.
    first = client.get(f"/v1/merchant/vouchers?deal_id={deal_1}&limit=1", headers=bearer(key_a)).get_json()
    assert listed(f"?deal_id={deal_1}&limit=1&cursor={first['next_cursor']}") == [(v1["id"], "redeemed")]
    moved = client.get(
        f"/v1/merchant/vouchers?deal_id={deal_2}&cursor={first['next_cursor']}", headers=bearer(key_a)
    )
    assert moved.status_code == 400 and "keep status and deal_id unchanged" in moved.get_json()["detail"]


def test_the_voucher_key_checks_the_holders_qr_payload(client: FlaskClient) -> None:
    merchant_a, key_a = make_merchant(client, name="A", category="cafe")
    merchant_b, key_b = make_merchant(client, name="B", category="cafe")
    voucher = _voucher(client, make_user(client)[1], _deal(client, key_a))
    served_a = client.get("/v1/merchant/voucher-key", headers=bearer(key_a)).get_json()
    served_b = client.get("/v1/merchant/voucher-key", headers=bearer(key_b)).get_json()
    assert (served_a["merchant_id"], served_b["merchant_id"]) == (merchant_a, merchant_b)
    key = base64.b64decode(served_a["voucher_key"], validate=True)
    other = base64.b64decode(served_b["voucher_key"], validate=True)
    assert len(key) >= 16 and key != other

    checked = check_qr_payload(key, voucher["qr_payload"])

    assert checked is not None
    assert (checked.merchant_id, checked.voucher_id) == (merchant_a, voucher["id"])
    assert checked.code == voucher["code"].replace("-", "")
    expires = datetime.fromisoformat(voucher["expires_at"])
    assert checked.expires_at == expires.replace(microsecond=0)
    assert check_qr_payload(other, voucher["qr_payload"]) is None
    parts = voucher["qr_payload"].split(".")
    code = parts[4]
    parts[4] = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert check_qr_payload(key, ".".join(parts)) is None
    # The key is stable across calls.
    again = client.get("/v1/merchant/voucher-key", headers=bearer(key_a)).get_json()
    assert again["voucher_key"] == served_a["voucher_key"]
