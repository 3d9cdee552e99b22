"""Edges of the O2O loop: closed merchants, credentials on public reads, CORS, instants out of range."""

from __future__ import annotations

import base64
import json

from flask.testing import FlaskClient

from lbs.services.nearby_pages import NearbyQuery, encode_cursor
from tests.conftest import OPERATOR
from tests.deals_factory import HELSINKI, bearer, create_deal, make_merchant, make_user, transition
from tests.factories import NOW
from tests.problems import assert_problem

ORIGIN = {"Origin": "https://widget.example"}


def test_a_closed_merchant_sells_nothing(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    live = create_deal(client, key, publish=True)
    paused = transition(client, key, create_deal(client, key, publish=True)["id"], "pause")
    _, token = make_user(client)

    closed = client.patch(f"/v1/merchants/{merchant_id}", json={"status": "closed"}, headers=OPERATOR)
    claimed = client.post(f"/v1/deals/{live['id']}/claim", headers={**bearer(token), "Idempotency-Key": "k"})
    resumed = client.post(f"/v1/merchant/deals/{paused['id']}/resume", headers=bearer(key))
    listed = client.get(f"/v1/merchants/{merchant_id}/deals").get_json()["items"]

    assert closed.status_code == 200
    assert_problem(claimed, 404)
    assert_problem(resumed, 409)
    assert listed == []
    assert_problem(client.get(f"/v1/deals/{live['id']}"), 404)


def test_public_reads_stay_public_for_merchant_keys_and_the_operator(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    query = {"lat": HELSINKI[0], "lon": HELSINKI[1]}

    for headers in (bearer(key), OPERATOR):
        assert client.get("/v1/nearby", query_string=query, headers=headers).status_code == 200
        assert client.get(f"/v1/merchants/{merchant_id}", headers=headers).status_code == 200
    # A user token that is wrong is still refused, never treated as anonymous.
    assert_problem(client.get("/v1/nearby", query_string=query, headers=bearer("lbs_ut_nope")), 401)


def test_cors_is_for_reads_only(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    _, token = make_user(client)

    read = client.get(f"/v1/deals/{deal['id']}", headers=ORIGIN)
    claim = client.post(
        f"/v1/deals/{deal['id']}/claim", headers={**ORIGIN, **bearer(token), "Idempotency-Key": "cors"}
    )

    assert read.headers.get("Access-Control-Allow-Origin") in {"*", ORIGIN["Origin"]}
    assert claim.status_code == 201
    assert "Access-Control-Allow-Origin" not in claim.headers


def test_instants_outside_2000_to_2099_are_400_not_500(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    far = {"valid_from": "9999-12-20T00:00:00+00:00", "valid_until": "9999-12-31T00:00:00+00:00"}
    nearby = {"lat": HELSINKI[0], "lon": HELSINKI[1], "at": "0001-01-01T00:00:00+00:00"}

    assert_problem(client.get("/v1/nearby", query_string=nearby), 400, field="at")
    assert_problem(client.get(f"/v1/deals/{deal['id']}", query_string={"at": nearby["at"]}), 400, field="at")
    assert_problem(
        client.post("/v1/merchant/deals", json={**deal, **far}, headers=bearer(key)), 400, field="valid_from"
    )
    assert client.get(f"/v1/merchants/{merchant_id}/deals").status_code == 200


def test_a_deal_ending_cursor_with_an_impossible_instant_is_400(client: FlaskClient) -> None:
    params = {"lat": HELSINKI[0], "lon": HELSINKI[1], "sort": "deal_ending"}
    query = NearbyQuery(
        lat=HELSINKI[0], lon=HELSINKI[1], radius_m=1000.0, limit=20, at=NOW, sort="deal_ending"
    )
    for ends_us, at_us in ((2**62, 0), (0, 2**62), (-(2**62), 0)):
        cursor = encode_cursor(query, 0.0, 1, ends_us, at_us)
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        assert (raw["e"], raw["t"]) == (ends_us, at_us)

        response = client.get("/v1/nearby", query_string={**params, "cursor": cursor})

        assert_problem(response, 400, field="cursor")
