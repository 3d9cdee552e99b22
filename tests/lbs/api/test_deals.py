"""Deals over HTTP: creation, validation, lifecycle, states at an instant, edits, public reads, authz."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from tests.deals_factory import (
    bearer,
    claim,
    create_deal,
    deal_payload,
    iso,
    make_merchant,
    make_user,
    transition,
)
from tests.problems import assert_problem

HELSINKI_TZ = ZoneInfo("Europe/Helsinki")
PROBLEMS = "https://lbs.dev/problems/"


def local(instant: datetime) -> str:
    return instant.astimezone(HELSINKI_TZ).isoformat()


def whole_second_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# Fixed once, so that every instant a test builds is on the same local day.
TOMORROW = datetime.now(HELSINKI_TZ).date() + timedelta(days=1)


def tomorrow_local(hour: int, minute: int = 0) -> datetime:
    """Tomorrow in Helsinki at hour:minute local, well inside a deal valid from yesterday for 30 days."""
    return datetime(TOMORROW.year, TOMORROW.month, TOMORROW.day, hour, minute, tzinfo=HELSINKI_TZ)


def test_create_a_draft(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    now = whole_second_now()
    body = deal_payload(now, quantity_total=50, list_price_minor=2000, deal_price_minor=1500)

    response = client.post("/v1/merchant/deals", json=body, headers=bearer(key))

    assert response.status_code == 201, response.get_data(as_text=True)
    deal = response.get_json()
    assert (deal["status"], deal["state"], deal["merchant_id"]) == ("draft", "draft", merchant_id)
    assert (deal["discount_pct"], deal["stock_left"], deal["quantity_claimed"]) == (25, 50, 0)
    assert deal["ends_at"] is None and deal["window"] is None
    # Sent in UTC, shown in the merchant's offset (Europe/Helsinki: +02:00 or +03:00).
    assert body["valid_from"].endswith("+00:00")
    assert deal["valid_from"] == local(now - timedelta(days=1))
    assert deal["valid_from"][-6:] in ("+02:00", "+03:00")
    assert deal["valid_until"] == local(now + timedelta(days=30))
    got = client.get(f"/v1/merchant/deals/{deal['id']}", headers=bearer(key))
    assert got.status_code == 200 and got.get_json()["title"] == body["title"]


def test_create_published_is_live_with_a_window_now(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    now = whole_second_now()

    deal = create_deal(client, key, now=now, publish=True, quantity_total=None, per_user_limit=3)

    assert (deal["status"], deal["state"]) == ("published", "live")
    assert (deal["discount_pct"], deal["stock_left"], deal["per_user_limit"]) == (40, None, 3)
    until = local(now + timedelta(days=30))
    assert deal["window"] == {"state": "now", "starts_at": local(now - timedelta(days=1)), "ends_at": until}
    assert deal["ends_at"] == until


BAD_WINDOW = {"days": ["mon"], "start": "10:00", "end": "12:00"}
NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"deal_price_minor": 1500}, "deal_price_minor"),
        ({"deal_price_minor": 1600}, "deal_price_minor"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "eur"}, "currency"),
        ({"valid_until": iso(NOW - timedelta(days=1))}, "valid_until"),
        ({"valid_until": iso(NOW - timedelta(days=2))}, "valid_until"),
        ({"valid_until": iso(NOW + timedelta(days=365, seconds=1))}, "valid_until"),
        ({"valid_from": "2026-01-01T00:00:00"}, "valid_from"),
        ({"windows": [{**BAD_WINDOW, "days": ["mon", "tue", "mon"]}]}, "windows"),
        ({"windows": [{**BAD_WINDOW, "days": []}]}, "windows"),
        ({"windows": [{**BAD_WINDOW, "start": "12:00", "end": "12:00"}]}, "windows"),
        ({"windows": [{**BAD_WINDOW, "end": "00:00"}]}, "windows"),
        ({"windows": [{**BAD_WINDOW, "start": "25:00"}]}, "windows"),
        ({"windows": [{**BAD_WINDOW, "end": "24:01"}]}, "windows"),
        ({"windows": [BAD_WINDOW] * 15}, "windows"),
        ({"quantity_total": 0}, "quantity_total"),
        ({"per_user_limit": 101}, "per_user_limit"),
        ({"colour": "red"}, "colour"),
    ],
    ids=[
        "deal-price-equal", "deal-price-above", "unknown-currency", "lowercase-currency",
        "until-equals-from", "until-before-from", "over-366-days", "naive-datetime", "repeated-day",
        "no-days", "start-equals-end", "end-midnight", "bad-hhmm", "end-after-24", "15-windows",
        "quantity-0", "per-user-101", "unknown-field",
    ],
)  # fmt: skip
def test_bad_deal_bodies_are_400_naming_the_field(
    overrides: dict[str, Any], field: str, client: FlaskClient
) -> None:
    _, key = make_merchant(client)

    response = client.post("/v1/merchant/deals", json=deal_payload(NOW, **overrides), headers=bearer(key))

    assert_problem(response, 400, field=field)
    assert client.get("/v1/merchant/deals", headers=bearer(key)).get_json()["items"] == []


def test_fourteen_windows_and_a_366_day_validity_are_accepted(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    windows = [{"days": ["mon"], "start": f"{h:02d}:00", "end": f"{h:02d}:30"} for h in range(14)]

    deal = create_deal(client, key, now=NOW, windows=windows, valid_until=iso(NOW + timedelta(days=365)))

    assert len(deal["windows"]) == 14


def test_lifecycle_and_its_transitions(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal_id = create_deal(client, key)["id"]

    def conflict(action: str, status_now: str) -> None:
        response = client.post(f"/v1/merchant/deals/{deal_id}/{action}", headers=bearer(key))
        body = assert_problem(response, 409)
        assert body["type"] == PROBLEMS + "invalid-transition", body
        assert body["status_now"] == status_now, body

    conflict("pause", "draft")
    conflict("resume", "draft")
    conflict("end", "draft")
    assert (transition(client, key, deal_id, "publish")["state"]) == "live"
    conflict("publish", "published")
    conflict("resume", "published")
    paused = transition(client, key, deal_id, "pause")
    assert (paused["status"], paused["state"]) == ("paused", "paused")
    conflict("pause", "paused")
    assert transition(client, key, deal_id, "resume")["state"] == "live"
    ended = transition(client, key, deal_id, "end")
    assert (ended["status"], ended["state"]) == ("ended", "expired")
    assert ended["ended_at"] is not None
    for action in ("publish", "pause", "resume", "end"):
        conflict(action, "ended")
    edit = assert_problem(
        client.patch(f"/v1/merchant/deals/{deal_id}", json={"title": "x"}, headers=bearer(key))
    )
    assert (edit["status"], edit["type"]) == (409, PROBLEMS + "invalid-transition")
    assert client.get(f"/v1/merchant/deals/{deal_id}", headers=bearer(key)).get_json()["status"] == "ended"


def test_pausing_then_ending_and_an_unknown_action(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal_id = create_deal(client, key, publish=True)["id"]
    transition(client, key, deal_id, "pause")

    assert transition(client, key, deal_id, "end")["state"] == "expired"
    assert client.get(f"/v1/deals/{deal_id}").get_json()["state"] == "expired"
    unknown = client.post(f"/v1/merchant/deals/{deal_id}/archive", headers=bearer(key))
    assert unknown.status_code in (400, 404)
    assert_problem(unknown)


def expire(client: FlaskClient, key: str, deal: dict[str, Any]) -> dict[str, Any]:
    """A published deal moved wholly into the past (allowed while it has no claims)."""
    past = {"valid_from": iso(NOW - timedelta(days=9)), "valid_until": iso(NOW - timedelta(days=1))}
    moved = client.patch(f"/v1/merchant/deals/{deal['id']}", json=past, headers=bearer(key))
    assert moved.status_code == 200, moved.get_data(as_text=True)
    return dict(moved.get_json())


def test_no_transition_after_valid_until(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    past = {"valid_from": iso(NOW - timedelta(days=9)), "valid_until": iso(NOW - timedelta(days=1))}
    draft = create_deal(client, key, **past)
    refused = client.post("/v1/merchant/deals", json=deal_payload(publish=True, **past), headers=bearer(key))
    assert_problem(refused, 400, field="valid_until")
    published = expire(client, key, create_deal(client, key, publish=True))

    for deal_id, action in ((draft["id"], "publish"), (published["id"], "pause"), (published["id"], "end")):
        body = assert_problem(client.post(f"/v1/merchant/deals/{deal_id}/{action}", headers=bearer(key)), 409)
        assert body["type"] == PROBLEMS + "invalid-transition", body
    assert (
        client.get(f"/v1/merchant/deals/{draft['id']}", headers=bearer(key)).get_json()["status"] == "draft"
    )
    assert client.get(f"/v1/deals/{published['id']}").get_json()["state"] == "expired"


def test_states_at_an_instant(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    now = whole_second_now()
    deal_id = create_deal(client, key, now=now, publish=True)["id"]
    valid_from, valid_until = now - timedelta(days=1), now + timedelta(days=30)

    def state_at(at: datetime) -> dict[str, Any]:
        response = client.get(
            f"/v1/merchant/deals/{deal_id}", query_string={"at": iso(at)}, headers=bearer(key)
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return dict(response.get_json())

    before = state_at(valid_from - timedelta(seconds=1))
    assert before["state"] == "scheduled"
    assert before["window"] == {
        "state": "next",
        "starts_at": local(valid_from),
        "ends_at": local(valid_until),
    }
    assert state_at(valid_from)["state"] == "live"
    assert state_at(valid_until - timedelta(seconds=1))["state"] == "live"
    assert state_at(valid_until)["state"] == "expired"
    assert state_at(valid_until + timedelta(days=5))["window"] is None
    # Any offset names the same instant.
    assert state_at(valid_until.astimezone(ZoneInfo("America/New_York")))["state"] == "expired"
    assert_problem(
        client.get(
            f"/v1/merchant/deals/{deal_id}", query_string={"at": "2026-01-01T12:00"}, headers=bearer(key)
        ),
        400,
        field="at",
    )


def test_a_draft_changes_freely(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal_id = create_deal(client, key)["id"]
    changes = {
        "kind": "fixed_price", "currency": "JPY", "list_price_minor": 3000, "deal_price_minor": 1000,
        "valid_from": iso(NOW - timedelta(days=2)), "redeem_within_minutes": 30, "title": "Lunch set",
        "windows": [{"days": ["sun", "mon"], "start": "22:00", "end": "02:00"}], "quantity_total": None,
    }  # fmt: skip

    response = client.patch(f"/v1/merchant/deals/{deal_id}", json=changes, headers=bearer(key))

    assert response.status_code == 200, response.get_data(as_text=True)
    deal = response.get_json()
    assert {k: deal[k] for k in changes if k not in ("valid_from", "windows")} == {
        k: v for k, v in changes.items() if k not in ("valid_from", "windows")
    }
    assert deal["windows"] == [{"days": ["mon", "sun"], "start": "22:00", "end": "02:00"}]
    assert deal["valid_from"] == local(NOW - timedelta(days=2))
    assert (deal["discount_pct"], deal["stock_left"]) == (67, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"deal_price_minor": 1500}, "deal_price_minor"),
        ({"list_price_minor": 900}, "deal_price_minor"),
        ({"valid_until": iso(NOW - timedelta(days=3))}, "valid_until"),
        ({"title": None}, "title"),
        ({"list_price_minor": None}, "list_price_minor"),
        ({"windows": None}, "windows"),
        ({"publish": True}, "publish"),
    ],
    ids=["deal-price-at-list", "list-below-deal", "until-before-from", "null-title", "null-price",
         "null-windows", "publish-field"],
)  # fmt: skip
def test_bad_edits_are_400_and_change_nothing(
    changes: dict[str, Any], field: str, client: FlaskClient
) -> None:
    _, key = make_merchant(client)
    deal = create_deal(client, key)

    assert_problem(
        client.patch(f"/v1/merchant/deals/{deal['id']}", json=changes, headers=bearer(key)), 400, field
    )
    assert client.get(f"/v1/merchant/deals/{deal['id']}", headers=bearer(key)).get_json() == deal


def test_edits_once_claimed(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = create_deal(client, key, publish=True, per_user_limit=2, quantity_total=10)
    path = f"/v1/merchant/deals/{deal['id']}"
    _, user = make_user(client)
    claim(client, user, deal["id"], "first")
    claim(client, user, deal["id"], "second")

    frozen_changes: list[dict[str, Any]] = [
        {"deal_price_minor": 800}, {"list_price_minor": 2000}, {"currency": "USD"},
        {"kind": "cash_voucher"}, {"valid_from": iso(NOW)}, {"redeem_within_minutes": 60},
    ]  # fmt: skip
    for frozen in frozen_changes:
        body = assert_problem(
            client.patch(path, json=frozen, headers=bearer(key)), 409, field=next(iter(frozen))
        )
        assert body["type"] == PROBLEMS + "field-frozen"
    limit = assert_problem(client.patch(path, json={"per_user_limit": 1}, headers=bearer(key)), 409)
    assert (limit["type"], limit["field"]) == (PROBLEMS + "field-frozen", "per_user_limit")
    assert_problem(client.patch(path, json={"quantity_total": 1}, headers=bearer(key)), 400, "quantity_total")
    past = iso(datetime.now(UTC) - timedelta(minutes=1))
    assert_problem(client.patch(path, json={"valid_until": past}, headers=bearer(key)), 400, "valid_until")
    assert client.get(path, headers=bearer(key)).get_json() == {
        **deal,
        "quantity_claimed": 2,
        "stock_left": 8,
    }

    safe = {"title": "Renamed", "quantity_total": 2, "per_user_limit": 3, "deal_price_minor": 900}
    response = client.patch(path, json=safe, headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    after = response.get_json()
    assert (after["title"], after["quantity_total"], after["per_user_limit"]) == ("Renamed", 2, 3)
    assert (after["stock_left"], after["state"]) == (0, "sold_out")


def test_public_reads_of_one_deal(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    draft = create_deal(client, key)
    published = create_deal(client, key, publish=True)

    assert_problem(client.get(f"/v1/deals/{draft['id']}"), 404)
    assert_problem(client.get("/v1/deals/999999"), 404)
    response = client.get(f"/v1/deals/{published['id']}")
    assert response.status_code == 200
    assert (response.get_json()["id"], response.get_json()["state"]) == (published["id"], "live")
    assert response.headers.get("Access-Control-Allow-Origin") == "*"


def test_a_merchants_public_deal_list(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    evening = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "18:00", "end": "23:00"}]
    outside = create_deal(client, key, publish=True, windows=evening, deal_price_minor=100)
    create_deal(client, key)  # a draft
    expired = expire(client, key, create_deal(client, key, publish=True))
    ended = create_deal(client, key, publish=True)
    transition(client, key, ended["id"], "end")
    claimable = create_deal(client, key, publish=True, deal_price_minor=1200)
    at = iso(tomorrow_local(12))

    items = client.get(f"/v1/merchants/{merchant_id}/deals", query_string={"at": at}).get_json()["items"]

    assert [d["id"] for d in items] == [claimable["id"], outside["id"]]
    assert [d["window"]["state"] for d in items] == ["now", "next"]
    assert client.get(f"/v1/deals/{expired['id']}").get_json()["state"] == "expired"
    assert_problem(client.get("/v1/merchants/999999/deals"), 404)


def test_merchants_see_only_their_own_deals(client: FlaskClient) -> None:
    _, key_a = make_merchant(client)
    _, key_b = make_merchant(client)
    deal = create_deal(client, key_a)
    own_b = create_deal(client, key_b, title="B's")
    path = f"/v1/merchant/deals/{deal['id']}"

    assert_problem(client.get(path, headers=bearer(key_b)), 404)
    assert_problem(client.patch(path, json={"title": "Hijacked"}, headers=bearer(key_b)), 404)
    for action in ("publish", "pause", "resume", "end"):
        assert_problem(client.post(f"{path}/{action}", headers=bearer(key_b)), 404)
    assert client.get(path, headers=bearer(key_a)).get_json() == deal
    listed = client.get("/v1/merchant/deals", headers=bearer(key_b)).get_json()["items"]
    assert [d["id"] for d in listed] == [own_b["id"]]


@pytest.mark.parametrize("kind", ["none", "unknown-key", "user-token", "basic"])
def test_credentials_come_before_the_body(kind: str, client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal_id = create_deal(client, key)["id"]
    _, user = make_user(client)
    headers = {
        "none": {},
        "unknown-key": bearer("lbs_mk_" + "x" * 43),
        "user-token": bearer(user),
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    }[kind]

    assert_problem(client.post("/v1/merchant/deals", json={"title": ""}, headers=headers), 401)
    assert_problem(client.patch(f"/v1/merchant/deals/{deal_id}", json={"title": None}, headers=headers), 401)
    assert_problem(client.post(f"/v1/merchant/deals/{deal_id}/nonsense", headers=headers), 401)
    assert_problem(client.get("/v1/merchant/deals", headers=headers), 401)
    assert [d["id"] for d in client.get("/v1/merchant/deals", headers=bearer(key)).get_json()["items"]] == [
        deal_id
    ]
