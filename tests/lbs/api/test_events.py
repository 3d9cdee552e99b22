"""POST /v1/events (client events, deduplicated per user) and the click a deal read logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from tests.deals_factory import bearer, claim, create_deal, iso, make_merchant, make_user
from tests.problems import assert_problem


def event(merchant_id: int, event_id: str = "e1", **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "visit",
        "merchant_id": merchant_id,
        "occurred_at": iso(datetime.now(UTC)),
        **fields,
    }


def stored(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(text("SELECT * FROM events ORDER BY id")).mappings()]


def post(client: FlaskClient, token: str, events: Any) -> Any:
    return client.post("/v1/events", json={"events": events}, headers=bearer(token))


def accepted(client: FlaskClient, token: str, events: list[dict[str, Any]]) -> tuple[int, int]:
    response = post(client, token, events)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return body["accepted"], body["duplicates"]


@pytest.mark.parametrize(
    "headers", [{}, bearer("lbs_ut_" + "x" * 43), {"Authorization": "Basic dXNlcjpwYXNz"}]
)
def test_events_need_a_user_token_before_the_body(
    headers: dict[str, str], engine: Engine, client: FlaskClient
) -> None:
    merchant_id, key = make_merchant(client)

    assert_problem(client.post("/v1/events", json={"events": "nope"}, headers=headers), 401)
    assert_problem(client.post("/v1/events", json={"events": [event(merchant_id)]}, headers=headers), 401)
    assert_problem(client.post("/v1/events", json={"events": [event(merchant_id)]}, headers=bearer(key)), 401)
    assert stored(engine) == []


def test_duplicates_are_counted_and_stored_once(engine: Engine, client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    user_id, user = make_user(client)
    other_id, other = make_user(client)
    batch = [
        event(merchant_id, "a", kind="impression", deal_id=deal["id"]),
        event(merchant_id, "b", kind="click"),
        event(merchant_id, "c"),
    ]

    assert accepted(client, user, batch) == (3, 0)
    assert accepted(client, user, batch) == (0, 3)
    assert accepted(client, user, [event(merchant_id, "d"), event(merchant_id, "d"), batch[0]]) == (1, 2)
    assert accepted(client, other, [event(merchant_id, "a")]) == (1, 0)

    rows = stored(engine)
    assert sorted((r["user_id"], r["client_event_id"]) for r in rows) == [
        (user_id, "a"), (user_id, "b"), (user_id, "c"), (user_id, "d"), (other_id, "a"),
    ]  # fmt: skip
    (first,) = [r for r in rows if (r["user_id"], r["client_event_id"]) == (user_id, "a")]
    assert (first["kind"], first["source"], first["merchant_id"], first["deal_id"]) == (
        "impression", "client", merchant_id, deal["id"],
    )  # fmt: skip


def test_a_bad_event_rejects_the_whole_batch(engine: Engine, client: FlaskClient) -> None:
    merchant_a, key_a = make_merchant(client)
    merchant_b, key_b = make_merchant(client)
    deal_b = create_deal(client, key_b, publish=True)
    draft_a = create_deal(client, key_a)
    _, user = make_user(client)
    now = datetime.now(UTC)
    good = event(merchant_a, "ok")

    cases: list[tuple[dict[str, Any], str]] = [
        (event(999_999, "x"), "events[1].merchant_id"),
        (event(merchant_a, "x", deal_id=deal_b["id"]), "events[1].deal_id"),
        (event(merchant_a, "x", deal_id=999_999), "events[1].deal_id"),
        (event(merchant_a, "x", deal_id=draft_a["id"]), "events[1].deal_id"),
        (event(merchant_a, "x", occurred_at=iso(now - timedelta(days=31))), "events[1].occurred_at"),
        (event(merchant_a, "x", occurred_at=iso(now + timedelta(minutes=10))), "events[1].occurred_at"),
        (event(merchant_a, "x", lat=60.17), "events[1].lat"),
    ]
    for bad, field in cases:
        assert_problem(post(client, user, [good, bad]), 400, field=field)
    assert stored(engine) == []
    assert accepted(client, user, [good, event(merchant_b, "y", deal_id=deal_b["id"])]) == (2, 0)


@pytest.mark.parametrize(
    ("events", "field", "path"),
    [
        ([{"kind": "claim"}], "events", "events.0.kind"),
        ([{"kind": "redemption"}], "events", "events.0.kind"),
        ([{"id": ""}], "events", "events.0.id"),
        ([{"id": "x" * 65}], "events", "events.0.id"),
        ([{"occurred_at": "2026-11-24T12:00:00"}], "events", "events.0.occurred_at"),
        ([{"lat": 91, "lon": 0}], "events", "events.0.lat"),
        ([{"colour": "red"}], "events", "events.0.colour"),
        ([], "events", None),
        ([{}] * 101, "events", None),
    ],
    ids=[
        "claim",
        "redemption",
        "empty-id",
        "long-id",
        "naive-time",
        "lat-91",
        "unknown-field",
        "none",
        "101",
    ],
)
def test_malformed_events_are_400(
    events: list[dict[str, Any]], field: str, path: str | None, engine: Engine, client: FlaskClient
) -> None:
    merchant_id, _ = make_merchant(client)
    _, user = make_user(client)

    body = assert_problem(post(client, user, [{**event(merchant_id), **e} for e in events]), 400, field=field)

    if path is not None:
        assert body["errors"][0].get("path") == path, body
    assert stored(engine) == []


def test_a_hundred_events_are_accepted(client: FlaskClient) -> None:
    merchant_id, _ = make_merchant(client)
    _, user = make_user(client)
    day_ago = iso(datetime.now(UTC) - timedelta(days=29))
    soon = iso(datetime.now(UTC) + timedelta(minutes=4))

    batch = [event(merchant_id, f"e{i}", occurred_at=day_ago if i % 2 else soon) for i in range(100)]

    assert accepted(client, user, batch) == (100, 0)


def test_positions_are_stored_only_as_h3_cells(engine: Engine, client: FlaskClient) -> None:
    merchant_id, _ = make_merchant(client)
    _, user = make_user(client)
    lat, lon = 60.169876543, 24.938765432

    assert accepted(client, user, [event(merchant_id, "p", lat=lat, lon=lon), event(merchant_id, "q")]) == (
        2,
        0,
    )

    rows = stored(engine)
    assert [r["h3_cell"] for r in rows] == [h3.str_to_int(h3.latlng_to_cell(lat, lon, 9)), None]
    for row in rows:
        for value in row.values():
            assert not isinstance(value, float), row
            assert "60.1698" not in str(value) and "24.9387" not in str(value), row


def test_reading_a_deal_with_a_user_token_logs_a_click(engine: Engine, client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    draft = create_deal(client, key)
    user_id, user = make_user(client)

    assert client.get(f"/v1/deals/{deal['id']}").status_code == 200
    assert stored(engine) == []
    assert client.get(f"/v1/deals/{deal['id']}", headers=bearer(user)).status_code == 200
    assert_problem(client.get(f"/v1/deals/{draft['id']}", headers=bearer(user)), 404)
    assert_problem(client.get(f"/v1/deals/{deal['id']}", headers=bearer("lbs_ut_wrong")), 401)

    rows = stored(engine)
    assert [(r["kind"], r["source"], r["user_id"], r["merchant_id"], r["deal_id"]) for r in rows] == [
        ("click", "server", user_id, merchant_id, deal["id"])
    ]
    assert rows[0]["h3_cell"] is None and rows[0]["client_event_id"] is None


def test_a_merchant_polls_its_own_event_feed(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    _, other_key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    _, token = make_user(client)
    client.get(f"/v1/deals/{deal['id']}", headers=bearer(token))  # a click
    voucher = claim(client, token, deal["id"], "feed-1")
    redeemed = client.post(
        "/v1/merchant/vouchers/redeem", json={"code": voucher["code"]}, headers=bearer(key)
    )
    assert redeemed.status_code == 200

    first = client.get("/v1/merchant/events", query_string={"limit": 2}, headers=bearer(key)).get_json()
    rest = client.get(
        "/v1/merchant/events", query_string={"cursor": first["next_cursor"]}, headers=bearer(key)
    ).get_json()
    polled = client.get(
        "/v1/merchant/events", query_string={"cursor": rest["next_cursor"]}, headers=bearer(key)
    ).get_json()
    others = client.get("/v1/merchant/events", headers=bearer(other_key)).get_json()

    feed = first["items"] + rest["items"]
    assert [e["kind"] for e in feed] == ["click", "claim", "redemption"]
    assert [e["voucher_id"] for e in feed] == [None, voucher["id"], voucher["id"]]
    assert all("user_id" not in e and "h3_cell" not in e for e in feed)
    # Nothing new: an empty page whose cursor is the one it was asked with, to poll again.
    assert polled == {"items": [], "next_cursor": rest["next_cursor"], "next_after": feed[-1]["id"]}
    assert others["items"] == [] and others["next_cursor"]
    # The deprecated after= (an event id) still reads the feed from there.
    after = client.get(
        "/v1/merchant/events", query_string={"after": feed[0]["id"]}, headers=bearer(key)
    ).get_json()
    assert after["items"] == feed[1:] and after["next_cursor"] == rest["next_cursor"]
    assert_problem(client.get("/v1/merchant/events", headers=bearer(token)), 401)


def test_the_event_feed_refuses_a_cursor_it_did_not_give(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    token = make_user(client)[1]
    claim(client, token, deal["id"], "feed-2")
    claim(client, make_user(client)[1], deal["id"], "feed-3")
    vouchers = client.get("/v1/merchant/vouchers", query_string={"limit": 1}, headers=bearer(key)).get_json()

    for cursor, detail in ((vouchers["next_cursor"], "another query"), ("bm90IGpzb24", "malformed")):
        response = client.get("/v1/merchant/events", query_string={"cursor": cursor}, headers=bearer(key))
        assert_problem(response, 400)
        assert response.get_json()["field"] == "cursor" and detail in response.get_json()["detail"]
    # Both: the cursor wins over the deprecated after; an empty cursor is none.
    first = client.get("/v1/merchant/events", headers=bearer(key)).get_json()
    both = client.get(
        "/v1/merchant/events", query_string={"cursor": first["next_cursor"], "after": 0}, headers=bearer(key)
    )
    assert both.status_code == 200 and both.get_json()["items"] == []
    empty = client.get("/v1/merchant/events", query_string={"cursor": ""}, headers=bearer(key))
    assert empty.get_json() == first
