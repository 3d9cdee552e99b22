"""Settlement statements through the API and `lbs payments mark-paid`: what a merchant earns
by redemption or by a no-refunds voucher's expiry, less the commission (rounded half up),
week by week and currency by currency; open, due, then paid."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import text

from lbs.cli import main
from lbs.payments import orders
from lbs.payments.expiry import expire
from lbs.payments.periods import WEEK, period_name, period_start
from lbs.services.redemption import redeem_voucher
from tests.deals_factory import bearer, create_deal, iso, make_merchant, make_user
from tests.prepaid_factory import paid_order
from tests.problems import assert_problem

BPS = 1234


@pytest.fixture
def app(make_app: Callable[..., OpenAPI], pay_config: dict[str, Any]) -> OpenAPI:
    return make_app(**pay_config, commission_bps=BPS)


def _prepaid(client: FlaskClient, key: str, price: int, **overrides: Any) -> int:
    overrides.setdefault("valid_from", iso(datetime.now(UTC) - timedelta(days=60)))
    deal = create_deal(
        client, key, publish=True, payment="prepaid", list_price_minor=price + 1000, deal_price_minor=price,
        per_user_limit=10, **overrides,
    )  # fmt: skip
    return int(deal["id"])


def _redeemed(client: FlaskClient, key: str, deal_id: int) -> int:
    """A user pays for the deal and redeems the voucher at the counter now: its id."""
    _, token = make_user(client)
    voucher_id = int(paid_order(client, token, deal_id)["voucher_id"])
    code = client.get(f"/v1/me/vouchers/{voucher_id}", headers=bearer(token)).get_json()["code"]
    redeemed = client.post("/v1/merchant/vouchers/redeem", json={"code": code}, headers=bearer(key))
    assert redeemed.status_code == 200, redeemed.get_json()
    return voucher_id


def _redeemed_at(app: OpenAPI, client: FlaskClient, deal_id: int, at: datetime) -> int:
    """The same, all of it at ``at`` (a past week): ordered, paid and redeemed then."""
    rt = app.extensions["lbs"]
    user_id, token = make_user(client)
    with rt.sessions() as session:
        placed = orders.place_order(session, rt.payments, user_id, deal_id, uuid.uuid4().hex, at, WEEK)
        assert placed.order.intent_id is not None
        rt.payments.pay_with_test_card(placed.order.intent_id, "visa")
        orders.sync_order(session, rt.payments, rt.secret_key, placed.order, at)
        voucher_id = orders.voucher_of(session, placed.order.id)
        merchant_id = placed.order.merchant_id
    assert voucher_id is not None
    code = client.get(f"/v1/me/vouchers/{voucher_id}", headers=bearer(token)).get_json()["code"]
    with rt.sessions() as session:
        redeem_voucher(session, rt.secret_key, merchant_id, code, at + timedelta(minutes=1), BPS)
        session.commit()
    return voucher_id


def _weeks_ago(n: int) -> datetime:
    """Midweek, ``n`` weeks back: a minute later is still that week."""
    return period_start(datetime.now(UTC)) - n * WEEK + timedelta(days=3, hours=12)


def _statements(client: FlaskClient, key: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"/v1/merchant/settlements{query}", headers=bearer(key))
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def _totals(statement: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("currency", "status", "vouchers", "gross_minor", "commission_minor", "net_minor")
    return tuple(statement[k] for k in keys)


def test_redemptions_make_a_statement_with_commission_rounded_half_up(
    app: OpenAPI, client: FlaskClient
) -> None:
    _, key = make_merchant(client)
    cheap, dear = _prepaid(client, key, 999, title="Soup"), _prepaid(client, key, 2500, title="Feast")
    first, second = _redeemed(client, key, cheap), _redeemed(client, key, dear)

    [statement] = _statements(client, key)["items"]
    # 999 x 12.34 % = 123.28 -> 123; 2500 x 12.34 % = 308.5 -> 309 (half up, not to even)
    assert _totals(statement) == ("EUR", "open", 2, 3499, 432, 3067)
    assert statement["period"] == period_name(period_start(datetime.now(UTC)))
    assert (statement["paid_at"], statement["reference"], "lines" in statement) == (None, None, False)
    week = client.get(f"/v1/merchant/settlements/{statement['period']}", headers=bearer(key)).get_json()
    lines = [(ln["voucher_id"], ln["deal_title"], ln["kind"], ln["price_minor"], ln["commission_minor"],
              ln["net_minor"]) for ln in week["items"][0]["lines"]]  # fmt: skip
    assert lines == [
        (first, "Soup", "redeemed", 999, 123, 876),
        (second, "Feast", "redeemed", 2500, 309, 2191),
    ]
    with app.extensions["lbs"].engine.connect() as c:
        stored = c.execute(text("SELECT id, commission_minor FROM vouchers ORDER BY id")).all()
    assert [tuple(r) for r in stored] == [(first, 123), (second, 309)]


def test_a_no_refunds_voucher_that_expires_is_earned(app: OpenAPI, client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal_id = _prepaid(client, key, 999, refund_policy="none", redeem_within_minutes=30)
    _, token = make_user(client)
    voucher_id = paid_order(client, token, deal_id)["voucher_id"]
    assert _statements(client, key)["items"] == []  # unused: held, not earned
    rt = app.extensions["lbs"]
    later = datetime.now(UTC) + timedelta(hours=1)

    with rt.sessions() as session:
        done = expire(session, rt.payments, rt.secret_key, later, BPS)

    assert (done.vouchers_earned, done.vouchers_refunded) == (1, 0)
    [statement] = _statements(client, key)["items"]
    assert _totals(statement)[2:] == (1, 999, 123, 876)
    week = client.get(f"/v1/merchant/settlements/{period_name(period_start(later))}", headers=bearer(key))
    [line] = week.get_json()["items"][0]["lines"]
    assert (line["voucher_id"], line["kind"], line["earned_at"]) == (voucher_id, "expired", later.isoformat())
    with rt.sessions() as session:
        assert expire(session, rt.payments, rt.secret_key, later, BPS).vouchers_earned == 0
    with rt.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM refunds")).scalar_one() == 0


def test_two_currencies_in_one_week_are_two_statements(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    euros, crowns = _prepaid(client, key, 999), _prepaid(client, key, 4900, currency="SEK")
    _redeemed(client, key, euros)
    _redeemed(client, key, crowns)
    _redeemed(client, key, crowns)

    items = _statements(client, key)["items"]

    assert [_totals(s) for s in items] == [
        ("EUR", "open", 1, 999, 123, 876),
        ("SEK", "open", 2, 9800, 1210, 8590),
    ]
    assert items[0]["period"] == items[1]["period"]
    week = client.get(f"/v1/merchant/settlements/{items[0]['period']}", headers=bearer(key)).get_json()[
        "items"
    ]
    assert [(s["currency"], [ln["price_minor"] for ln in s["lines"]]) for s in week] == [
        ("EUR", [999]), ("SEK", [4900, 4900]),
    ]  # fmt: skip


def _mark_paid(database_url: str, merchant_id: int, period: str, currency: str = "EUR") -> Result:
    args = ["payments", "mark-paid", "--merchant", str(merchant_id), "--period", period,
            "--currency", currency, "--reference", "SEPA 2026-0042"]  # fmt: skip
    return CliRunner().invoke(main, args, env={"LBS_DATABASE_URL": database_url})


def _refused(result: Result, says: str) -> None:
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_open_then_due_then_marked_paid(app: OpenAPI, client: FlaskClient, database_url: str) -> None:
    merchant_id, key = make_merchant(client)
    deal_id = _prepaid(client, key, 999)
    past = _weeks_ago(2)
    _redeemed_at(app, client, deal_id, past)
    _redeemed(client, key, deal_id)
    this_week, last = (period_name(period_start(at)) for at in (datetime.now(UTC), past))
    assert [(s["period"], s["status"]) for s in _statements(client, key)["items"]] == [
        (this_week, "open"), (last, "due"),
    ]  # fmt: skip

    paid = _mark_paid(database_url, merchant_id, last)

    assert paid.exit_code == 0, paid.output
    assert (
        paid.output.strip()
        == f"merchant {merchant_id}, {last}: 876 EUR for 1 voucher(s) marked paid (SEPA 2026-0042)"
    )
    items = _statements(client, key)["items"]
    assert [(s["period"], s["status"], s["reference"]) for s in items] == [
        (this_week, "open", None), (last, "paid", "SEPA 2026-0042"),
    ]  # fmt: skip
    assert items[1]["paid_at"] is not None
    _refused(_mark_paid(database_url, merchant_id, last), "already marked paid")
    _refused(_mark_paid(database_url, merchant_id, this_week), "has not ended")
    _refused(_mark_paid(database_url, merchant_id, last, currency="SEK"), "earned nothing in SEK")
    _refused(_mark_paid(database_url, merchant_id, period_name(past - WEEK)), "earned nothing")
    malformed = _mark_paid(database_url, merchant_id, "2026-W54")
    assert malformed.exit_code == 2 and "--period" in malformed.output
    with app.extensions["lbs"].engine.connect() as c:
        assert c.execute(text("SELECT count(*), sum(amount_minor) FROM settlement_payouts")).one() == (1, 876)


def test_statements_page_by_week(app: OpenAPI, client: FlaskClient) -> None:
    _, key = make_merchant(client)
    euros, crowns = _prepaid(client, key, 999), _prepaid(client, key, 4900, currency="SEK")
    weeks_ago = [1, 2, 4, 5]
    for n in weeks_ago:
        _redeemed_at(app, client, euros, _weeks_ago(n))
    _redeemed_at(app, client, crowns, _weeks_ago(2))  # that week has two statements
    expected = [period_name(period_start(_weeks_ago(n))) for n in weeks_ago]

    seen: list[tuple[str, str]] = []
    pages = 0
    cursor = ""
    while True:
        page = _statements(client, key, f"?limit=2{cursor}")
        seen += [(s["period"], s["currency"]) for s in page["items"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"

    assert pages == 2
    assert seen == [(expected[0], "EUR"), (expected[1], "EUR"), (expected[1], "SEK"), (expected[2], "EUR"),
                    (expected[3], "EUR")]  # fmt: skip
    assert _statements(client, key, "?limit=4")["next_cursor"] is None


@pytest.mark.parametrize("period", ["2026-W54", "2026-49", "W49", "2026-W7"])
def test_a_bad_period_is_a_400_naming_it(period: str, client: FlaskClient) -> None:
    _, key = make_merchant(client)

    assert_problem(client.get(f"/v1/merchant/settlements/{period}", headers=bearer(key)), 400, field="period")


def test_a_week_without_earnings_is_a_404(client: FlaskClient) -> None:
    _, key = make_merchant(client)

    assert_problem(client.get("/v1/merchant/settlements/2026-W01", headers=bearer(key)), 404)
