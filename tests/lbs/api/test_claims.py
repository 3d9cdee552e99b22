"""Claims: users claim deals with an Idempotency-Key and hold vouchers (docs/deals.md)."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text
from werkzeug.test import TestResponse

from lbs.services.voucher_codes import code_digest
from tests.deals_factory import bearer, make_merchant, make_user
from tests.problems import assert_problem

SECRET = "claims-test-secret-key-0123456789abcdef"
CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PROBLEMS = "https://lbs.dev/problems/"
LONGEST_KEY = ("".join(map(chr, range(0x21, 0x7F))) * 3)[:255]  # every printable ASCII character


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(secret_key=SECRET)


def _deal(client: FlaskClient, key: str, **overrides: Any) -> dict[str, Any]:
    """A published deal claimable now unless overridden (all day, now-1h .. now+30d)."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "title": "Evening ramen -40 %",
        "kind": "percent_off",
        "currency": "EUR",
        "list_price_minor": 1500,
        "deal_price_minor": 900,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(),
        "publish": True,
        **overrides,
    }
    response = client.post("/v1/merchant/deals", json=body, headers=bearer(key))
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def _claim(client: FlaskClient, token: str, deal_id: int, key: str | None = None) -> TestResponse:
    headers = {**bearer(token), "Idempotency-Key": key or str(uuid.uuid4())}
    return client.post(f"/v1/deals/{deal_id}/claim", headers=headers)


def _claimed(client: FlaskClient, token: str, deal_id: int, key: str | None = None) -> dict[str, Any]:
    response = _claim(client, token, deal_id, key)
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


WRITES = [
    "SELECT quantity_claimed FROM deals WHERE id = :d",
    "SELECT count(*) FROM vouchers WHERE deal_id = :d",
    "SELECT coalesce(sum(claims), 0) FROM user_deal_claims WHERE deal_id = :d",
    "SELECT count(*) FROM events WHERE kind = 'claim' AND deal_id = :d",
]


def _written(engine: Engine, deal_id: int) -> tuple[Any, ...]:
    """Everything a claim writes for a deal: stock, vouchers, per-user counts, claim events."""
    with engine.connect() as c:
        return tuple(c.execute(text(q), {"d": deal_id}).scalar_one() for q in WRITES)


def _not_claimable(response: TestResponse, reason: str) -> dict[str, Any]:
    body = assert_problem(response, 409)
    assert body["type"] == PROBLEMS + "deal-not-claimable", body
    assert body["reason"] == reason, body
    assert "state" in body and "window" in body, body
    return body


def _outside_window_now() -> list[dict[str, Any]]:
    """One hour on today's weekday (Helsinki), starting 6 hours from now: never containing now."""
    local = datetime.now(ZoneInfo("Europe/Helsinki"))
    hour = (local.hour + 6) % 24
    end = "24:00" if hour == 23 else f"{hour + 1:02d}:00"
    return [{"days": [DAYS[local.weekday()]], "start": f"{hour:02d}:00", "end": end}]


def test_a_claim_issues_a_voucher(client: FlaskClient, engine: Engine) -> None:
    merchant_id, key = make_merchant(client)
    deal = _deal(client, key)
    token = make_user(client)[1]
    before = datetime.now(UTC)

    voucher = _claimed(client, token, deal["id"])

    after = datetime.now(UTC)
    assert CODE.match(voucher["code"]), voucher["code"]
    assert (voucher["deal_id"], voucher["merchant_id"]) == (deal["id"], merchant_id)
    assert voucher["status"] == "issued"
    assert (voucher["price_minor"], voucher["currency"]) == (900, "EUR")
    assert voucher["redeemed_at"] is None
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(voucher["claimed_at"]) <= after
    assert datetime.fromisoformat(voucher["expires_at"]) == datetime.fromisoformat(deal["valid_until"])
    payload = voucher["qr_payload"].split(".")
    assert payload[:3] == ["LBS1", str(voucher["id"]), str(merchant_id)]
    assert payload[4] == voucher["code"].replace("-", "")
    assert voucher["qr_svg_url"] == f"/v1/me/vouchers/{voucher['id']}/qr.svg"
    assert _written(engine, deal["id"]) == (1, 1, 1, 1)
    # The code is not stored, only a digest keyed with the secret key.
    with engine.connect() as c:
        row = c.execute(text("SELECT * FROM vouchers WHERE id = :v"), {"v": voucher["id"]}).mappings().one()
    bare = voucher["code"].replace("-", "")
    assert bare not in " ".join(str(value) for value in row.values())
    assert row["code_digest"] == code_digest(SECRET.encode(), bare)
    assert row["code_digest"] != hashlib.sha256(bare.encode()).hexdigest()


def test_a_voucher_expires_redeem_within_minutes_after_its_claim(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, redeem_within_minutes=90)

    voucher = _claimed(client, make_user(client)[1], deal["id"])

    claimed_at = datetime.fromisoformat(voucher["claimed_at"])
    assert datetime.fromisoformat(voucher["expires_at"]) == claimed_at + timedelta(minutes=90)


def test_a_claim_writes_one_claim_event_with_its_voucher(client: FlaskClient, engine: Engine) -> None:
    merchant_id, key = make_merchant(client)
    deal = _deal(client, key)
    token = make_user(client)[1]

    voucher = _claimed(client, token, deal["id"], "k1")
    assert _claim(client, token, deal["id"], "k1").status_code == 200  # a replay writes nothing

    with engine.connect() as c:
        rows = c.execute(text("SELECT * FROM events WHERE kind = 'claim'")).mappings().all()
        user_id = c.execute(text("SELECT user_id FROM vouchers WHERE id = :v"), {"v": voucher["id"]}).scalar()
    assert len(rows) == 1
    row = rows[0]
    assert (row["voucher_id"], row["deal_id"], row["merchant_id"]) == (voucher["id"], deal["id"], merchant_id)
    assert (row["user_id"], row["source"]) == (user_id, "server")


def test_the_same_key_replays_the_same_voucher(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, per_user_limit=5)
    token = make_user(client)[1]
    first = _claimed(client, token, deal["id"], LONGEST_KEY)

    again = _claim(client, token, deal["id"], LONGEST_KEY)

    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["id"] == first["id"]
    assert again.get_json()["code"] == first["code"]
    assert _written(engine, deal["id"]) == (1, 1, 1, 1)
    # Another user may use the same key string: keys are per user.
    other = _claimed(client, make_user(client)[1], deal["id"], LONGEST_KEY)
    assert other["id"] != first["id"] and other["code"] != first["code"]


def test_the_same_key_on_another_deal_is_422(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    first, second = _deal(client, key), _deal(client, key, title="Another")
    token = make_user(client)[1]
    _claimed(client, token, first["id"], "once")

    response = _claim(client, token, second["id"], "once")

    body = assert_problem(response, 422)
    assert body["type"] == PROBLEMS + "idempotency-key-reused"
    assert _written(engine, second["id"]) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "k" * 256}, {"Idempotency-Key": "clé"}],
    ids=["missing", "empty", "256-chars", "non-ascii"],
)
def test_a_missing_or_malformed_idempotency_key_is_400(
    headers: dict[str, str], client: FlaskClient, engine: Engine
) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key)
    token = make_user(client)[1]

    response = client.post(f"/v1/deals/{deal['id']}/claim", headers={**bearer(token), **headers})

    body = assert_problem(response, 400, field="Idempotency-Key")
    assert "Idempotency-Key" in body["detail"]
    assert _written(engine, deal["id"]) == (0, 0, 0, 0)


def test_the_per_user_limit(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, per_user_limit=2, quantity_total=10)
    token = make_user(client)[1]
    _claimed(client, token, deal["id"])
    _claimed(client, token, deal["id"])

    response = _claim(client, token, deal["id"])

    body = assert_problem(response, 409)
    assert body["type"] == PROBLEMS + "claim-limit-reached"
    assert _written(engine, deal["id"]) == (2, 2, 2, 2)
    assert _claimed(client, make_user(client)[1], deal["id"])["status"] == "issued"


def test_a_deal_sells_out(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, quantity_total=3)
    users = [make_user(client)[1] for _ in range(4)]
    vouchers = [{**_claimed(client, t, deal["id"], f"k{t}"), "idempotency": f"k{t}"} for t in users[:3]]

    response = _claim(client, users[3], deal["id"])

    body = _not_claimable(response, "sold_out")
    assert body["state"] == "sold_out"
    assert len({v["code"] for v in vouchers}) == 3
    assert _written(engine, deal["id"]) == (3, 3, 3, 3)
    public = client.get(f"/v1/deals/{deal['id']}").get_json()
    assert (public["quantity_claimed"], public["stock_left"]) == (3, 0)
    # A retry of a claim that got its voucher still gets it once the deal is sold out.
    replay = _claim(client, users[0], deal["id"], vouchers[0]["idempotency"])
    assert (replay.status_code, replay.get_json()["id"]) == (200, vouchers[0]["id"])


def _race(app: OpenAPI, n: int, attempt: Callable[[FlaskClient, int], TestResponse]) -> list[TestResponse]:
    """n requests released at once, each from its own client and thread."""
    start = threading.Barrier(n)

    def run(i: int) -> TestResponse:
        own = app.test_client()
        start.wait(timeout=30)
        return attempt(own, i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_claims_never_oversell(app: OpenAPI, client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, quantity_total=3)
    users = [make_user(client)[1] for _ in range(8)]

    responses = _race(app, 8, lambda own, i: _claim(own, users[i], deal["id"]))

    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 5
    assert _written(engine, deal["id"]) == (3, 3, 3, 3)


def test_concurrent_retries_with_one_key_get_one_voucher(
    app: OpenAPI, client: FlaskClient, engine: Engine
) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, per_user_limit=5)
    token = make_user(client)[1]

    responses = _race(app, 6, lambda own, _: _claim(own, token, deal["id"], "one-key"))

    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert _written(engine, deal["id"]) == (1, 1, 1, 1)


@pytest.mark.parametrize("action", ["pause", "end", "move-valid-until-into-the-past"])
def test_a_paused_or_ended_deal_is_not_claimable(action: str, client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    now = datetime.now(UTC)
    deal = _deal(client, key, valid_from=(now - timedelta(hours=2)).isoformat())
    if action.startswith("move"):  # allowed: the deal has no claims yet
        past = {"valid_until": (now - timedelta(hours=1)).isoformat()}
        changed = client.patch(f"/v1/merchant/deals/{deal['id']}", json=past, headers=bearer(key))
    else:
        changed = client.post(f"/v1/merchant/deals/{deal['id']}/{action}", headers=bearer(key))
    assert changed.status_code == 200, changed.get_data(as_text=True)

    response = _claim(client, make_user(client)[1], deal["id"])

    reason = "paused" if action == "pause" else "expired"
    assert _not_claimable(response, reason)["state"] == reason
    assert _written(engine, deal["id"]) == (0, 0, 0, 0)


def test_a_deal_not_started_is_not_claimable(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    now = datetime.now(UTC)
    deal = _deal(client, key, valid_from=(now + timedelta(days=1)).isoformat())

    response = _claim(client, make_user(client)[1], deal["id"])

    body = _not_claimable(response, "not_started")
    assert body["state"] == "scheduled"
    # All day: the next window opens when the deal starts.
    assert body["window"]["state"] == "next"
    assert datetime.fromisoformat(body["window"]["starts_at"]) == datetime.fromisoformat(deal["valid_from"])
    assert _written(engine, deal["id"]) == (0, 0, 0, 0)


def test_a_deal_outside_its_window_is_not_claimable(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, windows=_outside_window_now())
    assert deal["state"] == "live" and deal["window"]["state"] == "next", deal

    response = _claim(client, make_user(client)[1], deal["id"])

    body = _not_claimable(response, "outside_window")
    assert body["state"] == "live"
    assert body["window"]["state"] == "next"
    assert datetime.fromisoformat(body["window"]["starts_at"]) > datetime.now(UTC)
    assert _written(engine, deal["id"]) == (0, 0, 0, 0)


def test_a_draft_or_unknown_deal_is_404(client: FlaskClient, engine: Engine) -> None:
    _, key = make_merchant(client)
    draft = _deal(client, key, publish=False)
    token = make_user(client)[1]

    assert_problem(_claim(client, token, draft["id"]), 404)
    assert_problem(_claim(client, token, draft["id"] + 1000), 404)
    assert _written(engine, draft["id"]) == (0, 0, 0, 0)


def test_my_vouchers_pages_newest_first(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, per_user_limit=5)
    token = make_user(client)[1]
    ids = [_claimed(client, token, deal["id"])["id"] for _ in range(3)]
    _claimed(client, make_user(client)[1], deal["id"])  # someone else's

    first = client.get("/v1/me/vouchers?limit=2", headers=bearer(token)).get_json()
    second = client.get(f"/v1/me/vouchers?limit=2&cursor={first['next_cursor']}", headers=bearer(token))
    # The deprecated before= (the smallest id of the previous page) reads the same page.
    before = client.get(f"/v1/me/vouchers?limit=2&before={ids[1]}", headers=bearer(token)).get_json()

    assert [v["id"] for v in first["items"]] == [ids[2], ids[1]]
    assert [v["id"] for v in second.get_json()["items"]] == [ids[0]]
    assert second.get_json()["next_cursor"] is None
    assert before == second.get_json()
    assert first["next_before"] == ids[1] and second.get_json()["next_before"] is None  # deprecated
    # A last page that is exactly full says it is the last.
    whole = client.get("/v1/me/vouchers?limit=3", headers=bearer(token)).get_json()
    assert len(whole["items"]) == 3 and whole["next_cursor"] is None
    # A cursor belongs to its filter: another status is a 400 naming the cursor.
    other = client.get(
        f"/v1/me/vouchers?status=redeemed&cursor={first['next_cursor']}", headers=bearer(token)
    )
    assert_problem(other, 400)
    assert other.get_json()["field"] == "cursor" and "keep status unchanged" in other.get_json()["detail"]
    assert all(v["status"] == "issued" and CODE.match(v["code"]) for v in first["items"])


def test_my_vouchers_filter_by_status(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key, per_user_limit=5)
    token = make_user(client)[1]
    kept = _claimed(client, token, deal["id"])
    used = _claimed(client, token, deal["id"])
    redeemed = client.post("/v1/merchant/vouchers/redeem", json={"code": used["code"]}, headers=bearer(key))
    assert redeemed.status_code == 200, redeemed.get_data(as_text=True)

    def listed(status: str) -> list[tuple[int, str]]:
        body = client.get(f"/v1/me/vouchers?status={status}", headers=bearer(token)).get_json()
        return [(v["id"], v["status"]) for v in body["items"]]

    assert listed("redeemed") == [(used["id"], "redeemed")]
    assert listed("issued") == [(kept["id"], "issued")]
    assert listed("expired") == []
    assert_problem(client.get("/v1/me/vouchers?status=lost", headers=bearer(token)), 400, field="status")


def test_my_voucher_by_id_and_its_qr_codes(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = _deal(client, key)
    token = make_user(client)[1]
    voucher = _claimed(client, token, deal["id"])
    base = f"/v1/me/vouchers/{voucher['id']}"

    one = client.get(base, headers=bearer(token))
    svg = client.get(f"{base}/qr.svg", headers=bearer(token))
    png = client.get(f"{base}/qr.png", headers=bearer(token))
    gif = client.get(f"{base}/qr.gif", headers=bearer(token))

    assert (one.status_code, one.get_json()) == (200, voucher)
    assert_problem(client.get(f"/v1/me/vouchers/{voucher['id'] + 100}", headers=bearer(token)), 404)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.data.lstrip().startswith((b"<?xml", b"<svg"))
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert gif.status_code in (400, 404)
    assert_problem(gif)
    assert_problem(client.get(f"{base}/qr.svg"), 401)


def test_the_claim_rate_limit(make_app: Callable[..., OpenAPI], engine: Engine) -> None:
    client = make_app(secret_key=SECRET, rate_limit_claim="2/minute").test_client()
    _, key = make_merchant(client)
    deal = _deal(client, key, per_user_limit=5)
    token = make_user(client)[1]
    _claimed(client, token, deal["id"])
    _claimed(client, token, deal["id"])

    response = _claim(client, token, deal["id"])

    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    assert _written(engine, deal["id"]) == (2, 2, 2, 2)
    # Counted per user token: another user is not held back.
    _claimed(client, make_user(client)[1], deal["id"])
