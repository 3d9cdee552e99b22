"""Deals in /v1/nearby: the best claimable deal per merchant, has_deal, sort=deal_ending, impressions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import h3
import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR
from tests.deals_factory import (
    HELSINKI,
    bearer,
    claim,
    create_deal,
    iso,
    make_merchant,
    make_user,
    transition,
)
from tests.oracle import destination
from tests.problems import assert_problem

TZ = ZoneInfo("Europe/Helsinki")
LAT, LON = HELSINKI
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
EVENING = [{"days": ALL_DAYS, "start": "18:00", "end": "23:00"}]

# Fixed once, so that every instant a test builds is on the same local day.
TOMORROW = datetime.now(TZ).date() + timedelta(days=1)


def tomorrow_local(hour: int, minute: int = 0) -> datetime:
    """Tomorrow in Helsinki at hour:minute: inside every deal here (valid from yesterday for 30 days)."""
    return datetime(TOMORROW.year, TOMORROW.month, TOMORROW.day, hour, minute, tzinfo=TZ)


def nearby(client: FlaskClient, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    query = {"lat": LAT, "lon": LON, **params}
    if isinstance(query.get("at"), datetime):
        query["at"] = iso(query["at"])
    response = client.get("/v1/nearby", query_string=query, headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def deal_of(page: dict[str, Any], merchant_id: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    (item,) = [i for i in page["items"] if i["merchant"]["id"] == merchant_id]
    return item["deal"], item["next_deal"]


def test_an_evening_deal_inside_and_outside_its_window(client: FlaskClient) -> None:
    with_deal, key = make_merchant(client, *destination(LAT, LON, 0, 50))
    make_merchant(client, *destination(LAT, LON, 90, 80))
    deal = create_deal(client, key, publish=True, windows=EVENING)
    evening, noon = tomorrow_local(19), tomorrow_local(12)
    starts, ends = tomorrow_local(18).isoformat(), tomorrow_local(23).isoformat()

    now_deal, now_next = deal_of(nearby(client, at=evening), with_deal)
    noon_deal, noon_next = deal_of(nearby(client, at=noon), with_deal)

    assert now_deal is not None and now_next is None
    assert (now_deal["id"], now_deal["discount_pct"], now_deal["stock_left"]) == (deal["id"], 40, 50)
    assert now_deal["window"] == {"state": "now", "starts_at": starts, "ends_at": ends}
    assert now_deal["ends_at"] == ends
    if evening.utcoffset() == timedelta(hours=2):
        assert ends.endswith("T23:00:00+02:00")
    assert noon_deal is None and noon_next is not None
    assert noon_next["id"] == deal["id"]
    assert noon_next["window"] == {"state": "next", "starts_at": starts, "ends_at": ends}
    assert noon_next["ends_at"] is None
    assert nearby(client, at=evening)["total"] == 2
    in_window = nearby(client, at=evening, has_deal="true")
    assert (in_window["total"], [i["merchant"]["id"] for i in in_window["items"]]) == (1, [with_deal])
    assert nearby(client, at=noon, has_deal="true") | {"at": None} == {
        "total": 0, "items": [], "next_cursor": None, "ranking": "distance", "at": None,
    }  # fmt: skip


def test_the_best_claimable_deal_is_shown(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    forty = create_deal(client, key, publish=True, deal_price_minor=900)
    fifty = create_deal(client, key, publish=True, deal_price_minor=750)
    ninety = create_deal(client, key, publish=True, deal_price_minor=150, quantity_total=1)
    create_deal(client, key, deal_price_minor=10)  # a draft
    _, user = make_user(client)

    def shown() -> int | None:
        deal, _ = deal_of(nearby(client), merchant_id)
        return None if deal is None else int(deal["id"])

    assert shown() == ninety["id"]
    claim(client, user, ninety["id"], "only-one")
    assert shown() == fifty["id"]
    transition(client, key, fifty["id"], "pause")
    assert shown() == forty["id"]
    transition(client, key, fifty["id"], "resume")
    assert shown() == fifty["id"]
    transition(client, key, fifty["id"], "end")
    transition(client, key, forty["id"], "end")
    assert deal_of(nearby(client), merchant_id) == (None, None)
    assert nearby(client, has_deal="true")["total"] == 0


def test_equal_discounts_prefer_the_soonest_end(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    create_deal(client, key, publish=True)
    early = create_deal(
        client, key, publish=True, windows=[{"days": ALL_DAYS, "start": "10:00", "end": "14:00"}]
    )

    deal, _ = deal_of(nearby(client, at=tomorrow_local(12)), merchant_id)

    assert deal is not None and deal["id"] == early["id"]
    assert deal["ends_at"] == tomorrow_local(14).isoformat()


def test_has_deal_is_exact_at_the_radius_and_pages_once(client: FlaskClient) -> None:
    radius = 500.0
    at = tomorrow_local(12)

    def shop(bearing: float, distance: float, deal: str | None, **deal_fields: Any) -> int:
        merchant_id, key = make_merchant(client, *destination(LAT, LON, bearing, distance))
        if deal is not None:
            create_deal(client, key, publish=deal == "published", **deal_fields)
        return merchant_id

    near = shop(0, 100, "published")
    shop(90, 200, None)
    edge_in = shop(180, radius - 0.5, "published")
    shop(270, radius + 0.5, "published")
    shop(45, 300, "draft")
    twin_a = shop(135, 300, "published")
    twin_pos = client.get(f"/v1/merchants/{twin_a}").get_json()
    twin_b, key_b = make_merchant(client, twin_pos["lat"], twin_pos["lon"])
    create_deal(client, key_b, publish=True, deal_price_minor=100)
    shop(200, 250, "published", windows=EVENING)
    inactive = shop(300, 150, "published")
    assert (
        client.patch(f"/v1/merchants/{inactive}", json={"status": "inactive"}, headers=OPERATOR).status_code
        == 200
    )
    params: dict[str, Any] = {"radius_m": radius, "has_deal": "true", "at": at}

    whole = nearby(client, **params)
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        paging: dict[str, Any] = {"cursor": cursor} if cursor else {}
        page = nearby(client, limit=2, **params, **paging)
        assert page["total"] == 4
        assert len(page["items"]) <= 2
        seen += [i["merchant"]["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    expected = [near, twin_a, twin_b, edge_in]
    assert [i["merchant"]["id"] for i in whole["items"]] == expected
    assert whole["total"] == 4
    assert [i["distance_m"] for i in whole["items"]] == pytest.approx(
        [100, 300, 300, radius - 0.5], abs=0.011
    )
    assert all(i["deal"]["window"]["state"] == "now" for i in whole["items"])
    assert seen == expected
    assert nearby(client, radius_m=radius, at=at)["total"] == 7


def test_sort_deal_ending_and_its_pinned_cursor(client: FlaskClient) -> None:
    at = tomorrow_local(12)

    def shop(distance: float, window: tuple[str, str] | None) -> int:
        merchant_id, key = make_merchant(client, *destination(LAT, LON, 10, distance))
        windows = [] if window is None else [{"days": ALL_DAYS, "start": window[0], "end": window[1]}]
        create_deal(client, key, publish=True, windows=windows)
        return merchant_id

    all_day = shop(10, None)
    till_20 = shop(20, ("09:00", "20:00"))
    till_14 = shop(30, ("10:00", "14:00"))
    till_13 = shop(40, ("11:00", "13:00"))
    same_13 = shop(35, ("11:30", "13:00"))
    shop(5, ("18:00", "23:00"))  # not claimable at noon
    params: dict[str, Any] = {"sort": "deal_ending", "radius_m": 1000}

    first = nearby(client, limit=3, at=at, **params)
    second = nearby(client, limit=3, cursor=first["next_cursor"], **params)

    ids = [i["merchant"]["id"] for i in first["items"] + second["items"]]
    assert ids == [same_13, till_13, till_14, till_20, all_day]
    assert first["ranking"] == second["ranking"] == "deal_ending"
    assert (first["total"], second["total"], second["next_cursor"]) == (5, 5, None)
    assert datetime.fromisoformat(second["at"]) == datetime.fromisoformat(first["at"]) == at
    assert [i["deal"]["ends_at"] for i in first["items"]] == [
        tomorrow_local(13).isoformat(), tomorrow_local(13).isoformat(), tomorrow_local(14).isoformat()
    ]  # fmt: skip

    by_distance = nearby(client, limit=1, at=at, sort="distance", radius_m=1000, has_deal="true")
    assert by_distance["next_cursor"] is not None
    mixed = client.get(
        "/v1/nearby",
        query_string={
            "lat": LAT,
            "lon": LON,
            "cursor": by_distance["next_cursor"],
            "has_deal": "true",
            **params,
        },
    )
    assert_problem(mixed, 400, field="cursor")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"at": "2026-11-25T12:00:00"}, "at"),
        ({"has_deal": "maybe"}, "has_deal"),
        ({"sort": "ending"}, "sort"),
    ],
)
def test_bad_deal_parameters_are_400(params: dict[str, str], field: str, client: FlaskClient) -> None:
    assert_problem(
        client.get("/v1/nearby", query_string={"lat": LAT, "lon": LON, **params}), 400, field=field
    )


def test_geojson_carries_the_deal(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    deal = create_deal(client, key, publish=True, windows=EVENING)

    response = client.get(
        "/v1/nearby",
        query_string={"lat": LAT, "lon": LON, "format": "geojson", "at": iso(tomorrow_local(19))},
    )

    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    (feature,) = response.get_json()["features"]
    assert feature["id"] == merchant_id
    assert feature["properties"]["deal"]["id"] == deal["id"]
    assert feature["properties"]["deal"]["window"]["state"] == "now"
    assert feature["properties"]["next_deal"] is None


def events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(text("SELECT * FROM events ORDER BY id")).mappings()]


def test_nearby_with_a_user_token_logs_coarse_impressions(
    engine: Engine, make_app: Callable[..., OpenAPI]
) -> None:
    client = make_app(event_flush_s=3600.0).test_client()  # flushed below, not by the clock
    plain, _ = make_merchant(client, *destination(LAT, LON, 0, 40))
    with_deal, key = make_merchant(client, *destination(LAT, LON, 180, 60))
    deal = create_deal(client, key, publish=True)
    user_id, user = make_user(client)
    lat, lon = 60.171234567, 24.941234567

    anonymous = client.get("/v1/nearby", query_string={"lat": lat, "lon": lon})
    assert anonymous.status_code == 200 and events(engine) == []
    page = client.get("/v1/nearby", query_string={"lat": lat, "lon": lon}, headers=bearer(user))
    assert page.status_code == 200
    assert_problem(
        client.get("/v1/nearby", query_string={"lat": lat, "lon": lon}, headers=bearer("lbs_ut_no")), 401
    )
    buffered = client.application.extensions["lbs"].events
    assert buffered.pending == 2 and events(engine) == []  # batched, not written by the read
    assert buffered.flush() == 2

    rows = events(engine)
    cell = h3.str_to_int(h3.latlng_to_cell(lat, lon, 9))
    shown = [(r["kind"], r["user_id"], r["merchant_id"], r["deal_id"], r["h3_cell"]) for r in rows]
    assert sorted(shown, key=lambda s: s[2]) == [
        ("impression", user_id, plain, None, cell),
        ("impression", user_id, with_deal, deal["id"], cell),
    ]
    for row in rows:
        for value in row.values():
            assert not isinstance(value, float), row
            assert "60.17" not in str(value) and "24.94" not in str(value), row
