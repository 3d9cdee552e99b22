"""`lbs demo` on both databases: Helsinki's merchants, visitors, deals and a model, once;
a second run adds nothing; the README's open_now query answers from it; where payments are
configured (localstripe here, as `bash scripts/run` does), deals to pay ahead for as well."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from lbs.cli import main
from lbs.geo.distance import great_circle_m
from lbs.models import Deal, Event, Merchant, User, Voucher
from seed import demo as city
from tests.conftest import TEST_SECRET_KEY
from tests.payments_support import STRIPE_TEST_KEY, STRIPE_TEST_WEBHOOK_SECRET


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            m.__tablename__: session.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (Merchant, User, Event, Deal, Voucher)
        }


def demo_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "LBS_DATABASE_URL": database_url,
        "LBS_MODEL_DIR": str(tmp_path / "models"),
        "LBS_SECRET_KEY": TEST_SECRET_KEY,
    }


def payments_env(localstripe: str) -> dict[str, str]:
    return {
        "LBS_PAYMENT_PROVIDER": "stripe",
        "LBS_STRIPE_SECRET_KEY": STRIPE_TEST_KEY,
        "LBS_STRIPE_WEBHOOK_SECRET": STRIPE_TEST_WEBHOOK_SECRET,
        "LBS_STRIPE_API_BASE": localstripe,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def prepaid_deals(engine: Engine) -> list[Deal]:
    with Session(engine) as session:
        return list(session.scalars(select(Deal).where(Deal.payment == "prepaid").order_by(Deal.id)))


def test_the_demo_city_is_seeded_once_and_answers_open_now(
    database_url: str, engine: Engine, make_app: Callable[..., OpenAPI], tmp_path: Path
) -> None:
    first = CliRunner().invoke(main, ["demo", "--users", "100"], env=demo_env(database_url, tmp_path))
    assert first.exit_code == 0, first.output
    assert "merchants: 1018 from Helsinki.osm.pbf (© OpenStreetMap contributors)" in first.output
    seeded = counts(engine)
    assert seeded["merchants"] == 1018 and seeded["users"] == 100 and seeded["events"] > 100 * 60
    assert seeded["deals"] > 50 and seeded["vouchers"] > 0
    assert f"people: 100 with {seeded['events']:,} events over 60 days" in first.output
    assert len(list((tmp_path / "models").glob("model-*"))) == 1

    again = CliRunner().invoke(main, ["demo", "--users", "100"], env=demo_env(database_url, tmp_path))

    assert again.exit_code == 0, again.output
    assert again.output.count("already there") == 4 and counts(engine) == seeded
    # No payments configured: every deal is claimed free, as before payments existed.
    assert "deals to pay ahead: none, this server takes no payments" in again.output
    assert prepaid_deals(engine) == []
    client = make_app(model_dir=str(tmp_path / "models")).test_client()
    query = {"lat": 60.1699, "lon": 24.9384, "open_now": "true", "at": "2026-11-25T12:00:00+02:00"}
    page = client.get("/v1/nearby", query_string=query).get_json()
    assert page["ranking"] == "relevance" and page["total"] > 100
    assert all(i["open_now"] and i["merchant"]["opening_hours"] for i in page["items"])


def test_the_demo_has_deals_to_try_at_any_hour_for_a_year(
    database_url: str, engine: Engine, make_app: Callable[..., OpenAPI], tmp_path: Path
) -> None:
    seeded = CliRunner().invoke(main, ["demo", "--users", "50"], env=demo_env(database_url, tmp_path))
    assert seeded.exit_code == 0, seeded.output
    client = make_app(model_dir=str(tmp_path / "models")).test_client()

    # At 03:30 on a Sunday in Helsinki, the deals to try are among the nearest with a deal.
    helsinki = ZoneInfo("Europe/Helsinki")
    today = datetime.now(helsinki).date()
    sunday = today + timedelta(days=7 - today.weekday())  # the next one, at least a day away
    night = {"lat": 60.1699, "lon": 24.9384, "has_deal": "true", "sort": "distance", "limit": 20,
             "at": datetime.combine(sunday, time(3, 30), helsinki).isoformat()}  # fmt: skip

    page = client.get("/v1/nearby", query_string=night).get_json()
    titles = [i["deal"]["title"] for i in page["items"]]
    assert titles.count(city.TRY_DEALS_TITLE) == city.TRY_DEALS, titles

    # And now, whatever the hour: a user claims one and gets a voucher.
    deal_id = client.get("/v1/nearby", query_string={**night, "at": None}).get_json()["items"][0]["deal"][
        "id"
    ]
    token = client.post("/v1/users").get_json()["token"]
    claim = client.post(
        f"/v1/deals/{deal_id}/claim", headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "try-1"}
    )
    assert claim.status_code == 201, claim.get_json()
    assert claim.get_json()["order_id"] is None  # paid at the counter: nothing to refund

    # Eleven months on, fewer than 30 days are left: the next run makes new ones.
    later = datetime.now(UTC) + timedelta(days=340)
    said: list[str] = []
    with Session(engine) as session, session.begin():
        city.try_deals(session, later, said.append)
    with Session(engine) as session:
        titled = select(func.count()).select_from(Deal).where(Deal.title == city.TRY_DEALS_TITLE)
        assert session.execute(titled).scalar_one() == 2 * city.TRY_DEALS
    assert said[0].startswith(f"deals to try: {city.TRY_DEALS} all day for a year")


def test_where_payments_are_configured_the_demo_has_deals_to_pay_ahead_for(
    database_url: str, engine: Engine, make_app: Callable[..., OpenAPI], tmp_path: Path, localstripe: str
) -> None:
    env = {**demo_env(database_url, tmp_path), **payments_env(localstripe)}
    seeded = CliRunner().invoke(main, ["demo", "--users", "50"], env=env)
    assert seeded.exit_code == 0, seeded.output
    assert f"deals to pay ahead: {city.TRY_DEALS} all day for a year" in seeded.output

    # At the cafés and restaurants next nearest after the deals to try, which stay free claims.
    prepaid = prepaid_deals(engine)
    with Session(engine) as session:
        tries = session.scalars(
            select(Deal).where(Deal.title == city.TRY_DEALS_TITLE).order_by(Deal.id)
        ).all()
        cafes = session.execute(
            select(Merchant.id, Merchant.lat, Merchant.lon).where(
                Merchant.category.in_(["cafe", "restaurant"])
            )
        ).all()
    nearest = [c.id for c in sorted(cafes, key=lambda c: great_circle_m(*city.CENTRE, c.lat, c.lon))]
    assert [d.merchant_id for d in tries] == nearest[: city.TRY_DEALS]
    assert [d.merchant_id for d in prepaid] == nearest[city.TRY_DEALS : 2 * city.TRY_DEALS]
    assert all(d.payment == "at_counter" for d in tries)
    terms = {(d.title, d.deal_price_minor, d.list_price_minor, d.currency, d.refund_policy) for d in prepaid}
    assert terms == {(city.PAY_AHEAD_TITLE, 900, 1500, "EUR", "anytime")}
    again = CliRunner().invoke(main, ["demo", "--users", "50"], env=env)
    assert again.exit_code == 0, again.output
    assert "deals to pay ahead: already there" in again.output
    assert len(prepaid_deals(engine)) == city.TRY_DEALS

    # Found nearby, shown as prepaid; a free claim is refused, an order is paid with the
    # test card, and the voucher refunded returns its unit.
    client = make_app(
        model_dir=str(tmp_path / "models"), payment_provider="stripe", stripe_secret_key=STRIPE_TEST_KEY,
        stripe_webhook_secret=STRIPE_TEST_WEBHOOK_SECRET, stripe_api_base=localstripe,
    ).test_client()  # fmt: skip
    near = {"lat": city.CENTRE[0], "lon": city.CENTRE[1], "has_deal": "true", "sort": "distance", "limit": 50}
    shown = [
        i["deal"] for i in client.get("/v1/nearby", query_string=near).get_json()["items"]
        if i["deal"]["payment"] == "prepaid"
    ]  # fmt: skip
    assert [(d["title"], d["refund_policy"]) for d in shown] == [(city.PAY_AHEAD_TITLE, "anytime")] * 5
    deal_id = shown[0]["id"]
    token = client.post("/v1/users").get_json()["token"]
    free = client.post(f"/v1/deals/{deal_id}/claim", headers={**bearer(token), "Idempotency-Key": "free"})
    assert free.status_code == 409 and free.get_json()["type"].endswith("/prepaid-deal")
    order = client.post(f"/v1/deals/{deal_id}/orders", headers={**bearer(token), "Idempotency-Key": "o-1"})
    assert order.status_code == 201, order.get_json()
    paid = client.post(
        f"/v1/me/orders/{order.get_json()['id']}/test-payment", json={"card": "visa"}, headers=bearer(token)
    ).get_json()
    assert paid["status"] == "paid" and paid["amount_minor"] == 900, paid
    refund = client.post(f"/v1/me/vouchers/{paid['voucher_id']}/refund", headers=bearer(token))
    assert refund.status_code == 200 and refund.get_json()["status"] == "succeeded", refund.get_json()
    with Session(engine) as session:
        assert session.get(Deal, deal_id).quantity_claimed == 0  # type: ignore[union-attr]

    # Eleven months on, fewer than 30 days are left: the next run makes new ones.
    said: list[str] = []
    with Session(engine) as session, session.begin():
        city.pay_ahead_deals(session, datetime.now(UTC) + timedelta(days=340), said.append)
    assert said[0].startswith(f"deals to pay ahead: {city.TRY_DEALS} all day for a year")
    assert len(prepaid_deals(engine)) == 2 * city.TRY_DEALS


def test_reset_starts_over(database_url: str, engine: Engine, tmp_path: Path) -> None:
    env = demo_env(database_url, tmp_path)
    assert CliRunner().invoke(main, ["demo", "--users", "60"], env=env).exit_code == 0
    with Session(engine) as session, session.begin():
        session.execute(Merchant.__table__.update().values(name="renamed"))

    reset = CliRunner().invoke(main, ["demo", "--users", "60", "--reset"], env=env)

    assert reset.exit_code == 0, reset.output
    assert "demo: reset" in reset.output and "already there" not in reset.output
    with Session(engine) as session:
        names = session.execute(select(Merchant.name)).scalars().all()
    assert len(names) == 1018 and "renamed" not in names
    assert len(list((tmp_path / "models").glob("model-*"))) == 1
