"""Reviews written in bulk (a seeded city's) get their merchants' totals from recount_ratings:
counted from all their reviews, with the ones write_review made, and seen by the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from lbs.models import Merchant, Review, Voucher
from lbs.services.reviews import recount_ratings
from tests.deals_factory import make_user
from tests.reviews_support import GENEROUS, redeemed, reviewed, shop, stored_ratings


def totals(engine: Engine) -> dict[int, tuple[int, int, int]]:
    with Session(engine) as session:
        return stored_ratings(session)


def revisions(engine: Engine, *merchant_ids: int) -> list[int]:
    with Session(engine) as session:
        found = {r[0]: r[1] for r in session.execute(select(Merchant.id, Merchant.revision))}
    return [found[m] for m in merchant_ids]


def test_bulk_reviews_are_counted_with_those_written_one_by_one(
    make_app: Callable[..., OpenAPI], engine: Engine
) -> None:
    client = make_app(**GENEROUS).test_client()
    a, a_key, a_deal = shop(client)
    b, b_key, b_deal = shop(client)
    other, other_key, other_deal = shop(client)
    _, token = make_user(client)
    reviewed(client, a_key, token, a_deal, 4)
    reviewed(client, other_key, token, other_deal, 1)
    bulk = [
        (redeemed(client, a_key, token, a_deal), 2),
        (redeemed(client, a_key, token, a_deal), 5),
        (redeemed(client, b_key, token, b_deal), 3),
    ]
    before, old_revisions = totals(engine), revisions(engine, a, b, other)
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        after_id = session.execute(select(func.max(Review.id))).scalar_one()
        for voucher_id, rating in bulk:
            voucher = session.get(Voucher, voucher_id)
            assert voucher is not None
            session.add(
                Review(
                    merchant_id=voucher.merchant_id, deal_id=voucher.deal_id, user_id=voucher.user_id,
                    voucher_id=voucher_id, rating=rating, text="Bulk.", created_at=now, updated_at=now,
                    report_count=0,
                )
            )  # fmt: skip
        session.flush()
        assert recount_ratings(session, after_id) == 2

    assert totals(engine) == {**before, a: (3, 11, 2), b: (1, 3, 0)}
    new_revisions = revisions(engine, a, b, other)
    assert new_revisions[0] > old_revisions[0] and new_revisions[1] > old_revisions[1]
    assert new_revisions[2] == old_revisions[2]  # no review of its in the load
    # The API's ratings follow (the rating table polls the merchant change log).
    listed = client.get(f"/v1/merchants/{a}/reviews").get_json()
    assert listed["rating"]["count"] == 3 and listed["rating"]["mean"] == round(11 / 3, 2)
    assert len(listed["items"]) == 3
