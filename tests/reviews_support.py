"""Review test data over HTTP: redeemed vouchers (claimed by a user, redeemed by the merchant)
and reviews of them; and a way to move their clocks back in the database."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from lbs.models import MerchantRating, Review, Voucher
from tests.deals_factory import HELSINKI, bearer, claim, create_deal, make_merchant

_keys = itertools.count(1)
# Limits high enough for a test to claim, redeem and report as much as it needs.
GENEROUS = {
    "rate_limit_claim": "100000/minute",
    "rate_limit_redeem": "100000/minute",
    "rate_limit_new_users": "100000/minute",
    "rate_limit_reports": "100000/minute",
}


def shop(
    client: FlaskClient,
    lat: float = HELSINKI[0],
    lon: float = HELSINKI[1],
    name: str | None = None,
    category: str = "restaurant",
    title: str = "Evening ramen -40 %",
) -> tuple[int, str, int]:
    """A merchant, its key and a published deal any user may claim many times: (id, key, deal)."""
    merchant_id, key = make_merchant(client, lat, lon, name, category)
    deal = create_deal(client, key, title=title, publish=True, per_user_limit=100, quantity_total=None)
    return merchant_id, key, int(deal["id"])


def claimed(client: FlaskClient, user_token: str, deal_id: int) -> dict[str, Any]:
    return claim(client, user_token, deal_id, f"review-test-{next(_keys)}")


def redeemed(client: FlaskClient, key: str, user_token: str, deal_id: int) -> int:
    """A voucher of the user's for the deal, redeemed by the merchant: its id."""
    voucher = claimed(client, user_token, deal_id)
    response = client.post(
        "/v1/merchant/vouchers/redeem", json={"code": voucher["code"]}, headers=bearer(key)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return int(voucher["id"])


def post_review(
    client: FlaskClient, user_token: str, voucher_id: int, rating: object, text: object = "Good."
) -> TestResponse:
    return client.post(
        "/v1/me/reviews",
        json={"voucher_id": voucher_id, "rating": rating, "text": text},
        headers=bearer(user_token),
    )


def reviewed(
    client: FlaskClient, key: str, user_token: str, deal_id: int, rating: int, text: str = "Good."
) -> dict[str, Any]:
    """A review of a freshly redeemed voucher; asserts 201 and returns it."""
    response = post_review(client, user_token, redeemed(client, key, user_token, deal_id), rating, text)
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def move_redemption(engine: Engine, voucher_id: int, redeemed_at: datetime) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Voucher).where(Voucher.id == voucher_id).values(redeemed_at=redeemed_at))


def move_review(engine: Engine, review_id: int, created_at: datetime) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Review).where(Review.id == review_id).values(created_at=created_at))


def days(n: float) -> timedelta:
    return timedelta(days=n)


def stored_ratings(session: Session) -> dict[int, tuple[int, int, int]]:
    """merchant_ratings as kept: merchant id -> (reviews, sum of stars, 4-5 stars)."""
    rows = session.execute(
        select(
            MerchantRating.merchant_id,
            MerchantRating.review_count,
            MerchantRating.rating_sum,
            MerchantRating.recommend_count,
        )
    )
    return {m: (count, stars, recommends) for m, count, stars, recommends in rows}
