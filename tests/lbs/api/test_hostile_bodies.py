"""Bodies a client should never send: nested past parsing, control characters, oversized.

Each is a 4xx problem naming what is wrong (issue 16, defects 1 to 3), and nothing of it is
stored, on both databases.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from lbs.api.bodies import DEFAULT_BODY_BYTES, body_limit
from tests.conftest import OPERATOR
from tests.deals_factory import bearer, create_deal, deal_payload, make_merchant, make_user
from tests.lbs.api.test_events import event, stored
from tests.problems import assert_problem


def nested(depth: int) -> str:
    """A JSON array nested ``depth`` deep inside {"events": ...}, as text."""
    return '{"events": ' + "[" * depth + "]" * depth + "}"


def send_raw(client: FlaskClient, method: str, path: str, data: bytes | str, headers: dict[str, str]) -> Any:
    return client.open(path, method=method, data=data, content_type="application/json", headers=headers)


def names(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT name FROM merchants ORDER BY id")))


@pytest.mark.parametrize("depth", [1_000, 10_000])  # 2 and 20 KB: under every cap
def test_a_body_nested_past_parsing_is_a_400_naming_the_body(
    depth: int, engine: Engine, client: FlaskClient
) -> None:
    merchant_id, key = make_merchant(client)
    deal = create_deal(client, key)
    _, user = make_user(client)

    problem = assert_problem(send_raw(client, "POST", "/v1/events", nested(depth), bearer(user)), 400, "body")
    assert "nested" in problem["detail"]
    patched = send_raw(client, "PATCH", f"/v1/merchant/deals/{deal['id']}", nested(depth), bearer(key))
    assert_problem(patched, 400, "body")
    assert stored(engine) == []
    # Still serving: the same client's next, valid batch is stored.
    assert (
        client.post("/v1/events", json={"events": [event(merchant_id)]}, headers=bearer(user)).status_code
        == 200
    )


def test_a_body_that_is_not_json_is_a_400_naming_the_body(client: FlaskClient) -> None:
    _, user = make_user(client)
    for broken in ('{"events": [', "{'events': []}", "", "\x00"):
        problem = assert_problem(send_raw(client, "POST", "/v1/events", broken, bearer(user)), 400, "body")
        assert "JSON" in problem["detail"]


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ("a\x00b", "U+0000"),
        ("a\x07b", "U+0007"),
        ("line\nbreak", "U+000A"),
        ("tab\there", "U+0009"),
        ("a\x7fb", "U+007F"),
        ("a\x85b", "U+0085"),  # C1's next line
        ("a\ud800b", "unicode"),  # half of a surrogate pair, which no encoding can store
    ],
)
def test_control_characters_in_a_merchant_name_are_a_400_and_nothing_changes(
    bad: str, named: str, engine: Engine, client: FlaskClient
) -> None:
    merchant_id, key = make_merchant(client, name="Cafe Kulma")

    for token in (OPERATOR["Authorization"].split()[1], key):
        response = client.patch(f"/v1/merchants/{merchant_id}", json={"name": bad}, headers=bearer(token))
        problem = assert_problem(response, 400, "name")
        assert named in problem["detail"]
    created = client.post(
        "/v1/merchants",
        json={"name": "Fine", "category": "cafe", "lat": 60.17, "lon": 24.94, "address": bad},
        headers=OPERATOR,
    )
    assert_problem(created, 400, "address")
    assert names(engine) == ["Cafe Kulma"]


def test_control_characters_in_deal_text_and_event_ids_are_400s(engine: Engine, client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    deal = create_deal(client, key, title="Two for one")
    _, user = make_user(client)

    assert_problem(
        client.post("/v1/merchant/deals", json=deal_payload(title="a\x00"), headers=bearer(key)),
        400,
        "title",
    )
    patched = client.patch(
        f"/v1/merchant/deals/{deal['id']}", json={"description": "x\x00y"}, headers=bearer(key)
    )
    assert_problem(patched, 400, "description")
    batch = client.post("/v1/events", json={"events": [event(merchant_id, "e\x001")]}, headers=bearer(user))
    problem = assert_problem(batch, 400, "events")
    assert problem["errors"][0]["path"] == "events.0.id"
    redeemed = client.post("/v1/merchant/vouchers/redeem", json={"code": "AB\x00CD"}, headers=bearer(key))
    assert_problem(redeemed, 400, "code")
    assert stored(engine) == []
    assert (
        client.get(f"/v1/merchant/deals/{deal['id']}", headers=bearer(key)).get_json()["title"]
        == "Two for one"
    )


def test_a_description_keeps_its_line_breaks_and_text_is_stored_nfc(client: FlaskClient) -> None:
    decomposed = unicodedata.normalize("NFD", "Café Ørsted")
    assert decomposed != "Café Ørsted"
    merchant_id, key = make_merchant(client, name=decomposed)
    assert client.get(f"/v1/merchants/{merchant_id}").get_json()["name"] == "Café Ørsted"

    deal = create_deal(client, key, description="Line one\nline two\r\nline three")
    assert deal["description"] == "Line one\nline two\nline three"
    patched = client.patch(
        f"/v1/merchant/deals/{deal['id']}",
        json={"title": unicodedata.normalize("NFD", "Crêpes")},
        headers=bearer(key),
    )
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert patched.get_json()["title"] == "Crêpes"


def test_a_body_over_its_endpoints_limit_is_a_413_naming_the_limit(
    engine: Engine, client: FlaskClient
) -> None:
    merchant_id, key = make_merchant(client)
    _, user = make_user(client)
    limit = body_limit("events.post_events")
    assert limit > DEFAULT_BODY_BYTES  # a full batch of events is larger than other bodies

    padding = " " * limit
    problem = assert_problem(send_raw(client, "POST", "/v1/events", padding + "{}", bearer(user)), 413)
    assert problem["limit_bytes"] == limit and f"{limit:,}" in problem["detail"]
    big_name = json.dumps({"name": "x" * DEFAULT_BODY_BYTES})
    assert_problem(send_raw(client, "PATCH", f"/v1/merchants/{merchant_id}", big_name, bearer(key)), 413)


def test_the_largest_valid_bodies_fit_their_caps(engine: Engine, client: FlaskClient) -> None:
    """Every string at its longest, every character an emoji spelled as JSON escapes (12 bytes)."""
    merchant_id, key = make_merchant(client)
    _, user = make_user(client)
    emoji = "\N{STEAMING BOWL}"

    batch = json.dumps({"events": [event(merchant_id, f"{i:02d}" + emoji * 62) for i in range(100)]})
    assert body_limit("events.post_events") / 2 < len(batch) < body_limit("events.post_events")
    assert send_raw(client, "POST", "/v1/events", batch, bearer(user)).status_code == 200
    assert len(stored(engine)) == 100
    deal = json.dumps(deal_payload(title=emoji * 120, description=emoji * 2000))
    assert DEFAULT_BODY_BYTES / 2 < len(deal) < DEFAULT_BODY_BYTES
    created = send_raw(client, "POST", "/v1/merchant/deals", deal, bearer(key))
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["description"] == emoji * 2000
