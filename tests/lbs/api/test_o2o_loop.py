"""The whole loop over HTTP: a merchant publishes a windowed deal, a user finds, claims, and redeems it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient

from tests.conftest import OPERATOR

HELSINKI = (60.1699, 24.9384)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def window_around(now: datetime, tz: str) -> dict[str, object]:
    """A three-hour window on today's local weekday that began an hour ago (it may cross midnight)."""
    start = (now.astimezone(ZoneInfo(tz)) - timedelta(hours=1)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=3)
    return {"days": [DAYS[start.weekday()]], "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}


def nearby(client: FlaskClient, at: datetime, **params: object) -> dict[str, object]:
    query = {"lat": HELSINKI[0], "lon": HELSINKI[1], "radius_m": 500, "at": at.isoformat(), **params}
    response = client.get("/v1/nearby", query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_publish_find_claim_redeem(client: FlaskClient) -> None:
    now = datetime.now(UTC)
    shop = client.post(
        "/v1/merchants",
        json={"name": "Ramen Ya", "category": "restaurant", "lat": HELSINKI[0], "lon": HELSINKI[1]},
        headers=OPERATOR,
    ).get_json()
    key = client.post(f"/v1/merchants/{shop['id']}/api-keys", headers=OPERATOR).get_json()["api_key"]
    created = client.post(
        "/v1/merchant/deals",
        headers=bearer(key),
        json={
            "title": "Evening ramen -40 %",
            "kind": "percent_off",
            "currency": "EUR",
            "list_price_minor": 1500,
            "deal_price_minor": 900,
            "quantity_total": 10,
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_until": (now + timedelta(days=30)).isoformat(),
            "windows": [window_around(now, shop["timezone"])],
            "publish": True,
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    deal = created.get_json()
    assert (deal["state"], deal["window"]["state"]) == ("live", "now")

    inside = nearby(client, now)
    later = nearby(client, now + timedelta(hours=6))
    shown = inside["items"][0]["deal"]
    assert shown["id"] == deal["id"] and shown["discount_pct"] == 40 and shown["stock_left"] == 10
    assert later["items"][0]["merchant"]["id"] == shop["id"] and later["items"][0]["deal"] is None
    assert nearby(client, now, has_deal="true")["total"] == 1
    assert nearby(client, now + timedelta(hours=6), has_deal="true")["total"] == 0

    user = client.post("/v1/users").get_json()
    claimed = client.post(
        f"/v1/deals/{deal['id']}/claim", headers={**bearer(user["token"]), "Idempotency-Key": "first"}
    )
    assert claimed.status_code == 201, claimed.get_data(as_text=True)
    voucher = claimed.get_json()
    assert nearby(client, datetime.now(UTC))["items"][0]["deal"]["stock_left"] == 9

    redeemed = client.post(
        "/v1/merchant/vouchers/redeem", headers=bearer(key), json={"code": voucher["code"]}
    )
    again = client.post("/v1/merchant/vouchers/redeem", headers=bearer(key), json={"code": voucher["code"]})
    mine = client.get("/v1/me/vouchers", headers=bearer(user["token"])).get_json()["items"]

    assert redeemed.status_code == 200 and redeemed.get_json()["status"] == "redeemed"
    assert again.status_code == 409 and again.get_json()["type"].endswith("voucher-already-redeemed")
    assert [(v["id"], v["status"]) for v in mine] == [(voucher["id"], "redeemed")]
