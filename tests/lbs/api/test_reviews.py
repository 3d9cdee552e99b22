"""The review rules through HTTP on both databases: only the holder of a redeemed voucher
reviews it, once, within 30 days; 403s that say why; edits for 30 days; what the public
sees; the merchant's one reply."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text

from tests.deals_factory import bearer, make_user
from tests.problems import assert_problem
from tests.reviews_support import (
    GENEROUS,
    claimed,
    days,
    move_redemption,
    move_review,
    post_review,
    redeemed,
    reviewed,
    shop,
)

PROBLEMS = "https://lbs.dev/problems/"


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(**GENEROUS)


def _rows(engine: Engine) -> tuple[object, ...]:
    with engine.connect() as c:
        return (
            c.execute(text("SELECT id, rating, text, reply_text FROM reviews ORDER BY id")).all(),
            c.execute(text("SELECT * FROM merchant_ratings ORDER BY merchant_id")).all(),
        )


def test_the_holder_of_a_redeemed_voucher_reviews_it_and_everyone_sees_it_verified(
    client: FlaskClient, engine: Engine
) -> None:
    merchant_id, key, deal_id = shop(client, title="Ramen for two")
    user_id, token = make_user(client)
    voucher_id = redeemed(client, key, token, deal_id)

    response = post_review(client, token, voucher_id, 4, "  Rich broth,\r\nslow service.  ")

    assert response.status_code == 201, response.get_data(as_text=True)
    mine = response.get_json()
    assert (mine["rating"], mine["text"]) == (4, "Rich broth,\nslow service.")  # trimmed, LF kept
    assert (mine["voucher_id"], mine["deal_id"], mine["merchant_id"]) == (voucher_id, deal_id, merchant_id)
    today = datetime.now(UTC).astimezone().date()
    listed = client.get(f"/v1/merchants/{merchant_id}/reviews").get_json()
    (public,) = listed["items"]
    on = public["verified"]["on"]
    assert abs((datetime.fromisoformat(on).date() - today).days) <= 1  # Helsinki's date of today
    assert public["verified"] == {"redeemed": "Ramen for two", "on": on}
    assert public["verified_text"] == f"verified: redeemed Ramen for two on {on}"
    assert public["author"] == "a verified customer" and public["reply"] is None
    # Nothing names the user: neither the id nor the voucher.
    assert (
        "voucher_id" not in public and "user_id" not in public and str(user_id) not in str(public["author"])
    )
    assert listed["rating"] == {
        "average": listed["rating"]["average"],
        "count": 1,
        "recommend": 0.21,
        "mean": 4.0,
    }


def test_a_voucher_is_reviewed_once_and_each_voucher_may_be(client: FlaskClient, engine: Engine) -> None:
    _, key, deal_id = shop(client)
    _, token = make_user(client)
    first, second = redeemed(client, key, token, deal_id), redeemed(client, key, token, deal_id)
    assert post_review(client, token, first, 5).status_code == 201
    before = _rows(engine)

    again = post_review(client, token, first, 1, "Changed my mind")

    body = assert_problem(again, 409)
    assert body["type"] == PROBLEMS + "already-reviewed" and body["voucher_id"] == first
    assert _rows(engine) == before
    assert post_review(client, token, second, 3).status_code == 201


def test_without_a_redeemed_voucher_of_ones_own_a_403_says_why(client: FlaskClient, engine: Engine) -> None:
    _, key, deal_id = shop(client)
    _, token = make_user(client)
    _, stranger = make_user(client)
    theirs = redeemed(client, key, token, deal_id)
    unredeemed = int(claimed(client, token, deal_id)["id"])
    old = redeemed(client, key, token, deal_id)
    redeemed_at = datetime(2026, 10, 1, 18, 30, tzinfo=UTC)
    move_redemption(engine, old, redeemed_at)
    cases = [
        (stranger, theirs, "not_yours"),
        (token, 10**9, "not_yours"),  # no such voucher: said as for another's
        (token, unredeemed, "not_redeemed"),
        (token, old, "review_window_closed"),
    ]
    before = _rows(engine)
    for who, voucher_id, reason in cases:
        body = assert_problem(post_review(client, who, voucher_id, 5), 403)
        assert (body["type"], body["reason"]) == (PROBLEMS + "review-not-allowed", reason), body
        assert str(voucher_id) in body["detail"] or reason == "review_window_closed"
    closed = assert_problem(post_review(client, token, old, 5), 403)
    assert "closed 30 days after the redemption, on 2026-10-31" in closed["detail"]
    assert datetime.fromisoformat(closed["closed_at"]) == redeemed_at + days(30)
    assert _rows(engine) == before


def test_a_refunded_voucher_is_not_reviewed(client: FlaskClient, engine: Engine) -> None:
    _, _, deal_id = shop(client)
    _, token = make_user(client)
    voucher_id = int(claimed(client, token, deal_id)["id"])
    with engine.begin() as c:
        c.execute(
            text("UPDATE vouchers SET refunded_at = :t WHERE id = :v"),
            {"t": datetime.now(UTC), "v": voucher_id},
        )

    body = assert_problem(post_review(client, token, voucher_id, 5), 403)

    assert body["reason"] == "refunded"


def test_the_window_is_30_days_from_the_redemption(client: FlaskClient, engine: Engine) -> None:
    _, key, deal_id = shop(client)
    _, token = make_user(client)
    inside, outside = redeemed(client, key, token, deal_id), redeemed(client, key, token, deal_id)
    now = datetime.now(UTC)
    move_redemption(engine, inside, now - days(29.9))
    move_redemption(engine, outside, now - days(30.001))

    assert post_review(client, token, inside, 5).status_code == 201
    assert assert_problem(post_review(client, token, outside, 5), 403)["reason"] == "review_window_closed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": "five"}, "rating"),
        ({"rating": None}, "rating"),
        ({"text": ""}, "text"),
        ({"text": " \n\t "}, "text"),  # empty once trimmed
        ({"text": "x" * 2001}, "text"),
        ({"text": "bell\u0007"}, "text"),
        ({"text": "nul\u0000"}, "text"),
        ({"text": "c1\u0085 inside"}, "text"),
        ({"text": 5}, "text"),
        ({"voucher_id": 0}, "voucher_id"),
        ({"stars": 5}, "stars"),
    ],
)
def test_bad_reviews_are_400_naming_the_field(
    body: dict[str, object], field: str, client: FlaskClient, engine: Engine
) -> None:
    _, key, deal_id = shop(client)
    _, token = make_user(client)
    voucher_id = redeemed(client, key, token, deal_id)
    before = _rows(engine)

    sent = {"voucher_id": voucher_id, "rating": 4, "text": "Fine.", **body}
    problem = assert_problem(
        client.post("/v1/me/reviews", json=sent, headers=bearer(token)), 400, field=field
    )

    if field == "rating" and body["rating"] in (0, 6):
        assert "allowed: integer in [1, 5]" in problem["detail"]
    if field == "text" and body["text"] == "x" * 2001:
        assert "2000" in problem["detail"]
    if field == "text" and body["text"] == "bell\u0007":
        assert "U+0007" in problem["detail"]
    assert _rows(engine) == before


def test_the_author_edits_for_30_days_and_the_totals_follow(client: FlaskClient, engine: Engine) -> None:
    merchant_id, key, deal_id = shop(client)
    _, token = make_user(client)
    _, other = make_user(client)
    review = reviewed(client, key, token, deal_id, 5, "Great")
    reviewed(client, key, token, deal_id, 2, "Meh")

    edited = client.patch(f"/v1/me/reviews/{review['id']}", json={"rating": 3}, headers=bearer(token))

    assert edited.status_code == 200, edited.get_data(as_text=True)
    assert (edited.get_json()["rating"], edited.get_json()["text"]) == (3, "Great")
    with engine.connect() as c:
        totals = c.execute(
            text("SELECT review_count, rating_sum, recommend_count FROM merchant_ratings")
        ).one()
    assert tuple(totals) == (2, 5, 0)
    read = client.get(f"/v1/merchants/{merchant_id}").get_json()["rating"]
    assert (read["count"], read["mean"]) == (2, 2.5)
    text_only = client.patch(
        f"/v1/me/reviews/{review['id']}", json={"text": "Good, really"}, headers=bearer(token)
    )
    assert text_only.get_json()["text"] == "Good, really" and text_only.get_json()["rating"] == 3
    # Not the author: as if there were no such review.
    assert_problem(
        client.patch(f"/v1/me/reviews/{review['id']}", json={"rating": 1}, headers=bearer(other)), 404
    )
    assert_problem(client.patch(f"/v1/me/reviews/{review['id']}", json={}, headers=bearer(token)), 400)
    assert_problem(
        client.patch(f"/v1/me/reviews/{review['id']}", json={"rating": None}, headers=bearer(token)),
        400,
        "rating",
    )
    move_review(engine, review["id"], datetime.now(UTC) - days(30.01))
    before = _rows(engine)
    late = assert_problem(
        client.patch(f"/v1/me/reviews/{review['id']}", json={"rating": 5}, headers=bearer(token)), 403
    )
    assert late["reason"] == "edit_window_closed" and "editable_until" in late
    assert _rows(engine) == before


def test_the_merchant_replies_once_to_its_own_reviews(client: FlaskClient, engine: Engine) -> None:
    merchant_id, key, deal_id = shop(client)
    _, other_key, _ = shop(client)
    _, token = make_user(client)
    review = reviewed(client, key, token, deal_id, 2, "Cold soup")

    answer = client.post(
        f"/v1/merchant/reviews/{review['id']}/reply",
        json={"text": "Sorry! Next bowl on us."},
        headers=bearer(key),
    )

    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["reply"]["text"] == "Sorry! Next bowl on us."
    listed = client.get(f"/v1/merchants/{merchant_id}/reviews").get_json()["items"][0]
    assert listed["reply"] == answer.get_json()["reply"]
    before = _rows(engine)
    again = client.post(
        f"/v1/merchant/reviews/{review['id']}/reply", json={"text": "Also..."}, headers=bearer(key)
    )
    assert assert_problem(again, 409)["type"] == PROBLEMS + "already-replied"
    theirs = client.post(
        f"/v1/merchant/reviews/{review['id']}/reply", json={"text": "Fake"}, headers=bearer(other_key)
    )
    assert_problem(theirs, 403)
    assert_problem(
        client.post("/v1/merchant/reviews/999999/reply", json={"text": "?"}, headers=bearer(key)), 404
    )
    assert_problem(
        client.post(f"/v1/merchant/reviews/{review['id']}/reply", json={"text": ""}, headers=bearer(key)),
        400,
        "text",
    )
    assert _rows(engine) == before


def test_my_reviews_are_listed_newest_first(client: FlaskClient) -> None:
    _, key, deal_id = shop(client)
    _, token = make_user(client)
    _, other = make_user(client)
    written = [reviewed(client, key, token, deal_id, r)["id"] for r in (5, 4, 3)]
    reviewed(client, key, other, deal_id, 1)

    first = client.get("/v1/me/reviews?limit=2", headers=bearer(token)).get_json()
    rest = client.get(
        f"/v1/me/reviews?limit=2&cursor={first['next_cursor']}", headers=bearer(token)
    ).get_json()

    assert [r["id"] for r in first["items"] + rest["items"]] == written[::-1]
    assert rest["next_cursor"] is None
    assert all("editable_until" in r for r in first["items"])


def test_reviews_of_an_unknown_merchant_are_404_and_a_foreign_cursor_400(client: FlaskClient) -> None:
    merchant_id, key, deal_id = shop(client)
    other_id, _, _ = shop(client)
    _, token = make_user(client)
    for rating in (5, 4):
        reviewed(client, key, token, deal_id, rating)
    cursor = client.get(f"/v1/merchants/{merchant_id}/reviews?limit=1").get_json()["next_cursor"]

    assert_problem(client.get("/v1/merchants/999999/reviews"), 404)
    assert_problem(client.get(f"/v1/merchants/{other_id}/reviews?cursor={cursor}"), 400, "cursor")
    assert_problem(
        client.get(f"/v1/merchants/{merchant_id}/reviews?sort=rating&cursor={cursor}"), 400, "cursor"
    )
    assert_problem(client.get(f"/v1/merchants/{merchant_id}/reviews?cursor=bm9wZQ"), 400, "cursor")
    assert_problem(client.get(f"/v1/merchants/{merchant_id}/reviews?sort=stars"), 400, "sort")
    assert_problem(client.get(f"/v1/merchants/{merchant_id}/reviews?limit=101"), 400, "limit")


def test_public_review_reads_allow_cors_and_writes_do_not(client: FlaskClient) -> None:
    merchant_id, key, deal_id = shop(client)
    _, token = make_user(client)
    review = reviewed(client, key, token, deal_id, 4)
    origin = {"Origin": "https://shop.example"}

    read = client.get(f"/v1/merchants/{merchant_id}/reviews", headers=origin)
    report = client.post(f"/v1/reviews/{review['id']}/reports", json={"reason": "spam"}, headers=origin)

    assert read.headers.get("Access-Control-Allow-Origin") in ("*", origin["Origin"])
    assert report.status_code == 201 and "Access-Control-Allow-Origin" not in report.headers
