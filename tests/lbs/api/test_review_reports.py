"""Reports of reviews (anyone, once per reporter, rate-limited; no address stored) and of
harassment by merchants (users), and the operator's reading of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR
from tests.deals_factory import bearer, make_user
from tests.problems import assert_problem
from tests.reviews_support import GENEROUS, reviewed, shop


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(**{**GENEROUS, "rate_limit_reports": "3/minute", "rate_limit_storage": "memory://"})


def _reports(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text("SELECT review_id, reporter, reason FROM review_reports"))]


def test_anyone_reports_a_review_once_and_no_address_is_kept(client: FlaskClient, engine: Engine) -> None:
    _, key, deal_id = shop(client)
    _, author = make_user(client)
    _, reader = make_user(client)
    review = reviewed(client, key, author, deal_id, 1, "Awful")
    url = f"/v1/reviews/{review['id']}/reports"

    anonymous = client.post(url, json={"reason": "fake"}, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    repeated = client.post(url, json={"reason": "spam"}, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    by_user = client.post(url, json={"reason": "offensive"}, headers=bearer(reader))

    assert (anonymous.status_code, anonymous.get_json()) == (201, {"review_id": review["id"], "first": True})
    assert (repeated.status_code, repeated.get_json()["first"]) == (200, False)
    assert by_user.status_code == 201
    stored = _reports(engine)
    assert len(stored) == 2 and not any("203.0.113" in str(row) for row in stored)
    with engine.connect() as c:
        assert c.execute(text("SELECT report_count FROM reviews")).scalar_one() == 2
    listed = client.get("/v1/reports/reviews", headers=OPERATOR).get_json()["items"]
    assert [(r["reason"], r["by"]) for r in listed] == [("offensive", "user"), ("fake", "anonymous")]


def test_reports_are_rate_limited_per_reporter(client: FlaskClient, engine: Engine) -> None:
    _, key, deal_id = shop(client)
    _, author = make_user(client)
    reviews = [reviewed(client, key, author, deal_id, 2)["id"] for _ in range(4)]
    address = {"REMOTE_ADDR": "198.51.100.4"}

    answers = [
        client.post(f"/v1/reviews/{r}/reports", json={"reason": "spam"}, environ_base=address).status_code
        for r in reviews
    ]
    other_address = client.post(
        f"/v1/reviews/{reviews[-1]}/reports",
        json={"reason": "spam"},
        environ_base={"REMOTE_ADDR": "198.51.100.5"},
    )

    assert answers[:3] == [201, 201, 201]
    limited = client.post(f"/v1/reviews/{reviews[-1]}/reports", json={"reason": "spam"}, environ_base=address)
    problem = assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1 and "report" in problem["detail"]
    assert answers[3] == 429 and other_address.status_code == 201
    assert len(_reports(engine)) == 4


@pytest.mark.parametrize(
    ("body", "field"), [({"reason": "boring"}, "reason"), ({}, "reason"), ({"reason": "spam", "x": 1}, "x")]
)
def test_bad_reports_are_400(
    body: dict[str, object], field: str, client: FlaskClient, engine: Engine
) -> None:
    _, key, deal_id = shop(client)
    _, author = make_user(client)
    review = reviewed(client, key, author, deal_id, 2)

    assert_problem(client.post(f"/v1/reviews/{review['id']}/reports", json=body), 400, field)
    assert_problem(client.post("/v1/reviews/999999/reports", json={"reason": "spam"}), 404)
    assert _reports(engine) == []


def test_a_user_reports_harassment_by_a_merchant(client: FlaskClient, engine: Engine) -> None:
    merchant_id, key, deal_id = shop(client)
    other_id, _, _ = shop(client)
    _, author = make_user(client)
    _, stranger = make_user(client)
    review = reviewed(client, key, author, deal_id, 3, "Three stars, honestly")
    body = {
        "merchant_id": merchant_id,
        "review_id": review["id"],
        "text": "22 messages asking me to change it",
    }

    made = client.post("/v1/me/harassment-reports", json=body, headers=bearer(author))

    assert made.status_code == 201, made.get_data(as_text=True)
    assert {k: made.get_json()[k] for k in ("merchant_id", "review_id", "status")} == {
        "merchant_id": merchant_id,
        "review_id": review["id"],
        "status": "open",
    }
    plain = {"merchant_id": other_id, "text": "Called me at night"}
    assert client.post("/v1/me/harassment-reports", json=plain, headers=bearer(stranger)).status_code == 201
    # A review named must be the reporter's own, of that merchant.
    assert_problem(
        client.post("/v1/me/harassment-reports", json=body, headers=bearer(stranger)), 400, "review_id"
    )
    elsewhere = {**body, "merchant_id": other_id}
    assert_problem(
        client.post("/v1/me/harassment-reports", json=elsewhere, headers=bearer(author)), 400, "review_id"
    )
    unknown = {"merchant_id": 999999, "text": "?"}
    assert_problem(
        client.post("/v1/me/harassment-reports", json=unknown, headers=bearer(author)), 400, "merchant_id"
    )
    assert_problem(
        client.post("/v1/me/harassment-reports", json={**plain, "text": "\u0000"}, headers=bearer(author)),
        400,
        "text",
    )
    assert_problem(client.post("/v1/me/harassment-reports", json=plain), 401)
    listed = client.get("/v1/reports/harassment", headers=OPERATOR).get_json()["items"]
    assert [r["merchant_id"] for r in listed] == [other_id, merchant_id]
