"""`lbs seed synthetic` on both databases: exactly what the generator made, once per seed,
ids that later writes continue from, vouchers a counter can redeem, reviews of redeemed
vouchers with their merchants' ratings, a city /v1/nearby serves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner, Result
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from lbs.categories import Category
from lbs.cli import main
from lbs.models import Deal, Event, Merchant, Review, User, UserDealClaims, Voucher
from lbs.services import voucher_codes as codes
from lbs.services.merchants import MerchantFields, create_merchant
from lbs.services.redemption import redeem_voucher
from lbs.services.reviews import REVIEW_WINDOW, write_review
from seed.loader import REVIEW_TEXTS
from seed.people import KIND
from tests.conftest import TEST_SECRET_KEY
from tests.reviews_support import stored_ratings

KEY = TEST_SECRET_KEY.encode()


def seed(database_url: str, *args: str) -> Result:
    env = {"LBS_DATABASE_URL": database_url, "LBS_SECRET_KEY": TEST_SECRET_KEY}
    result = CliRunner().invoke(main, ["seed", "synthetic", *args], env=env)
    assert result.exit_code == 0, result.output
    return result


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            m.__tablename__: session.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (Merchant, User, Deal, Voucher, UserDealClaims, Event)
        }


CITY = ("--merchants", "3000", "--users", "400", "--days", "30", "--seed", "5")


def test_a_city_with_people_loads_once_and_whole(database_url: str, engine: Engine) -> None:
    first = seed(database_url, *CITY)

    loaded = counts(engine)
    assert loaded["merchants"] == 3000 and loaded["users"] == 400
    assert loaded["deals"] > 100 and loaded["events"] > 400 * 30
    assert loaded["vouchers"] == loaded["user_deal_claims"] > 0
    for table, n in loaded.items():
        assert f"{table}: {n:,} rows" in first.output
    with Session(engine) as session:
        kinds = dict(session.execute(select(Event.kind, func.count()).group_by(Event.kind)).all())
        assert set(kinds) == set(KIND) and kinds["claim"] == loaded["vouchers"]
        # Every deal's stock counter agrees with its vouchers.
        per_deal = dict(
            session.execute(select(Voucher.deal_id, func.count()).group_by(Voucher.deal_id)).all()
        )
        claimed = dict(session.execute(select(Deal.id, Deal.quantity_claimed)).all())
        assert all(claimed[d] == per_deal.get(d, 0) for d in claimed)
        refs = session.execute(select(Merchant.source_ref).order_by(Merchant.id).limit(2)).scalars().all()
        assert refs == ["synthetic:5/m0", "synthetic:5/m1"]

    again = seed(database_url, *CITY)

    assert "already loaded" in again.output and counts(engine) == loaded


def test_a_city_too_small_for_any_claim_loads(database_url: str, engine: Engine) -> None:
    """Few people over few days may claim nothing: the events then point at no voucher (the
    loader indexed an empty array of voucher ids and crashed)."""
    seed(database_url, "--merchants", "20000", "--users", "500", "--days", "3", "--seed", "7")

    loaded = counts(engine)
    assert loaded["merchants"] == 20000 and loaded["users"] == 500 and loaded["events"] > 0
    assert loaded["vouchers"] == loaded["user_deal_claims"]


def test_another_seed_adds_a_city_and_ids_continue(database_url: str, engine: Engine) -> None:
    seed(database_url, "--merchants", "500", "--users", "50", "--seed", "1")
    seed(database_url, "--merchants", "500", "--users", "50", "--seed", "2")

    with Session(engine) as session, session.begin():
        top = session.execute(select(func.max(Merchant.id))).scalar_one()
        added = create_merchant(
            session,
            MerchantFields(name="After", category=Category.cafe, lat=60.17, lon=24.94),
            datetime.now(UTC),
        )
        assert top == 1000 and added.id == 1001
        users = session.execute(select(func.count(func.distinct(User.source_ref)))).scalar_one()
        assert users == 100


def test_vouchers_carry_codes_the_counter_can_redeem(database_url: str, engine: Engine) -> None:
    seed(database_url, *CITY)

    with Session(engine) as session, session.begin():
        vouchers = session.execute(select(Voucher)).scalars().all()
        assert all(v.code_digest == codes.code_digest(KEY, codes.code_for(KEY, v.nonce)) for v in vouchers)
        assert any(v.redeemed_at is not None for v in vouchers)
        open_one = next(v for v in vouchers if v.redeemed_at is None)
        code = codes.code_for(KEY, open_one.nonce)
        at = open_one.claimed_at + timedelta(minutes=5)
        row = redeem_voucher(session, KEY, open_one.merchant_id, code, at, commission_bps=1000)
        assert row.voucher.redeemed_at == at


def _ratings_and_recount(
    session: Session,
) -> tuple[dict[int, tuple[int, int, int]], dict[int, tuple[int, int, int]]]:
    """merchant_ratings' rows, and the same counted from the reviews."""
    counted = session.execute(
        select(
            Review.merchant_id,
            func.count(),
            func.sum(Review.rating),
            func.sum(case((Review.rating >= 4, 1), else_=0)),
        ).group_by(Review.merchant_id)
    ).all()
    return stored_ratings(session), {int(m): (int(n), int(stars), int(up)) for m, n, stars, up in counted}


def test_people_review_redeemed_vouchers_and_merchants_show_the_ratings(
    database_url: str, engine: Engine, make_app: Callable[..., OpenAPI]
) -> None:
    seed(database_url, *CITY)

    with Session(engine) as session, session.begin():
        reviews = session.execute(
            select(Review, Voucher).join(Voucher, Voucher.id == Review.voucher_id)
        ).all()
        assert len(reviews) >= 3
        for review, voucher in reviews:
            assert (review.user_id, review.merchant_id, review.deal_id) == (
                voucher.user_id,
                voucher.merchant_id,
                voucher.deal_id,
            )
            assert voucher.redeemed_at is not None
            assert voucher.redeemed_at < review.created_at <= voucher.redeemed_at + REVIEW_WINDOW
            assert review.text == REVIEW_TEXTS[review.rating - 1]
        kept, counted = _ratings_and_recount(session)
        assert kept == counted and len(kept) >= 3
        merchant_id = reviews[0][0].merchant_id
        of_merchant = sum(r.merchant_id == merchant_id for r, _ in reviews)
        # A review written later, one by one, adds to the seeded totals.
        unreviewed = session.execute(
            select(Voucher)
            .where(Voucher.redeemed_at.is_not(None), Voucher.id.not_in(select(Review.voucher_id)))
            .limit(1)
        ).scalar_one()
        write_review(session, unreviewed.user_id, unreviewed.id, 5, "Later.", unreviewed.redeemed_at)
        kept, counted = _ratings_and_recount(session)
        assert kept == counted

    client = make_app().test_client()
    page = client.get(f"/v1/merchants/{merchant_id}/reviews").get_json()
    assert page["rating"]["count"] == len(page["items"]) == of_merchant
    assert all(item["verified_text"].startswith("verified: redeemed ") for item in page["items"])


def test_the_city_answers_nearby_with_hours_and_deals(
    database_url: str, make_app: Callable[..., OpenAPI]
) -> None:
    seed(database_url, "--merchants", "3000", "--days", "30", "--seed", "5")

    client = make_app().test_client()
    page = client.get(
        "/v1/nearby", query_string={"lat": 60.1699, "lon": 24.9384, "radius_m": 50000, "limit": 100}
    ).get_json()

    assert page["total"] == 3000
    items = page["items"]
    assert sum(i["merchant"]["opening_hours"] is not None for i in items) > 70
    assert all(i["open_now"] in (True, False, None) for i in items)
    assert any(i["open_now"] is True for i in items) or any(i["next_open_at"] for i in items)
