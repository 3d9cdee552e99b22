"""fields= on the merchant reads, /v1/nearby (JSON and GeoJSON) and the map's box, and the
week of opening hours they carry: trimmed items still validate, unknown names are a 400
listing the allowed ones, and hours come out as known answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.conftest import OPERATOR
from tests.deals_factory import bearer, create_deal, make_merchant
from tests.factories import merchant, seed
from tests.problems import assert_problem

CENTRE = (60.1699, 24.9384)
AT = "2026-11-27T23:00:00+02:00"  # Friday night in Helsinki, in the week of Mon 23 November
BOX = "24.90,60.15,24.98,60.19"
MERCHANT = [
    "id", "name", "category", "lat", "lon", "address", "phone", "website", "price_level",
    "opening_hours", "tags", "timezone", "status", "created_at", "updated_at", "attribution", "rating",
]  # fmt: skip
HOURS = ["open_now", "closes_at", "next_open_at"]


def with_hours(engine: Engine, client: FlaskClient) -> list[int]:
    """Three merchants near the centre: overnight Fridays, 24/7, and no hours."""
    rows = [
        merchant("Night bar", CENTRE[0] + 0.0005, CENTRE[1], "bar"),
        merchant("Kiosk", CENTRE[0] + 0.0010, CENTRE[1], "grocery"),
        merchant("Unknown", CENTRE[0] + 0.0015, CENTRE[1], "other"),
    ]
    ids = [s.id for s in seed(engine, rows)]
    for merchant_id, hours in zip(ids, ["Mo-Th 17:00-23:00; Fr-Sa 18:00-02:00", "24/7", None], strict=True):
        if hours:
            patched = client.patch(
                f"/v1/merchants/{merchant_id}", json={"opening_hours": hours}, headers=OPERATOR
            )
            assert patched.status_code == 200
    return ids


def get(client: FlaskClient, path: str, **query: Any) -> Any:
    response = client.get(path, query_string=query or None)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def nearby(client: FlaskClient, **query: Any) -> Any:
    return get(
        client, "/v1/nearby", **{"lat": CENTRE[0], "lon": CENTRE[1], "at": AT, "sort": "distance", **query}
    )


def test_a_merchant_read_has_its_hours_now_and_this_weeks(engine: Engine, client: FlaskClient) -> None:
    bar, kiosk, unknown = with_hours(engine, client)
    before = datetime.now(ZoneInfo("Europe/Helsinki")).date().isoformat()
    read = get(client, f"/v1/merchants/{kiosk}")
    after = datetime.now(ZoneInfo("Europe/Helsinki")).date().isoformat()

    assert list(read) == [*MERCHANT, *HOURS, "hours"]
    assert (read["open_now"], read["closes_at"], read["next_open_at"]) == (True, None, None)
    week = read["hours"]["week"]
    assert [d["weekday"] for d in week] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert all(d["text"].endswith(": Open 24 hours") for d in week)
    assert read["hours"]["today"] in week and read["hours"]["today"]["date"] in {before, after}
    assert get(client, f"/v1/merchants/{unknown}")["hours"] is None
    bar_week = get(client, f"/v1/merchants/{bar}")["hours"]["week"]
    assert [[(i["opens"], i["closes"], i["closes_next_day"]) for i in d["intervals"]] for d in bar_week] == [
        *[[("17:00", "23:00", False)]] * 4,
        *[[("18:00", "02:00", True)]] * 2,
        [],
    ]


def test_a_merchant_read_gives_its_hours_as_of_at(engine: Engine, client: FlaskClient) -> None:
    bar, _, _ = with_hours(engine, client)
    # Saturday 00:30 in Helsinki: open since Friday 18:00, until 02:00.
    read = get(client, f"/v1/merchants/{bar}", at="2026-11-27T22:30:00Z", fields="open_now,closes_at,hours")
    assert (read["open_now"], read["closes_at"]) == (True, "2026-11-28T02:00:00+02:00")
    assert read["hours"]["today"]["text"] == "Saturday: 18:00\N{EN DASH}02:00"
    assert read["hours"]["week"][0]["date"] == "2026-11-23"
    late = client.get(f"/v1/merchants/{bar}", query_string={"at": "2026-11-27T22:30:00"})  # no offset
    assert_problem(late, 400)
    assert late.get_json()["field"] == "at"


def test_fields_choose_what_a_merchant_read_sends(engine: Engine, client: FlaskClient) -> None:
    _, kiosk, _ = with_hours(engine, client)
    assert get(client, f"/v1/merchants/{kiosk}", fields="name") == {"id": kiosk, "name": "Kiosk"}
    assert get(client, f"/v1/merchants/{kiosk}", fields="open_now,category") == {
        "id": kiosk,
        "category": "grocery",
        "open_now": True,
    }
    assert list(get(client, f"/v1/merchants/{kiosk}", fields="hours")) == ["id", "hours"]
    # Repeated, like category.
    assert get(client, f"/v1/merchants/{kiosk}?fields=name&fields=id") == {"id": kiosk, "name": "Kiosk"}
    # The merchant's own read takes them too.
    merchant_id, key = make_merchant(client, name="Own")
    own = client.get("/v1/merchants/me?fields=name,status", headers=bearer(key)).get_json()
    assert own == {"id": merchant_id, "name": "Own", "status": "active"}


@pytest.mark.parametrize(
    ("path", "value", "allowed"),
    [
        ("/v1/merchants/1", "name,deal", "hours"),  # deal is no field of a merchant read
        ("/v1/nearby?lat=60.17&lon=24.94", "nmae", "distance_m"),
        ("/v1/merchants?bbox=" + BOX, "distance_m", "deal"),  # a box has no distance
        ("/v1/nearby?lat=60.17&lon=24.94", ",", "reasons"),  # empty
    ],
)
def test_an_unknown_field_is_a_400_listing_the_allowed_ones(
    engine: Engine, client: FlaskClient, path: str, value: str, allowed: str
) -> None:
    with_hours(engine, client)
    response = client.get(f"{path}{'&' if '?' in path else '?'}fields={value}")
    assert_problem(response, 400)
    problem = response.get_json()
    assert problem["field"] == "fields"
    assert allowed in problem["errors"][0]["allowed"] and "created_at" in problem["errors"][0]["allowed"]


def test_nearby_items_keep_the_fields_named(engine: Engine, client: FlaskClient) -> None:
    bar, kiosk, unknown = with_hours(engine, client)
    full = nearby(client)
    lean = nearby(client, fields="name,distance_m,open_now")

    assert [i["merchant"]["id"] for i in full["items"]] == [bar, kiosk, unknown]
    assert lean["items"] == [
        {
            "merchant": {"id": i["merchant"]["id"], "name": i["merchant"]["name"]},
            "distance_m": i["distance_m"],
            "open_now": i["open_now"],
        }
        for i in full["items"]
    ]
    assert {k: lean[k] for k in ("total", "ranking", "at", "next_cursor")} == {
        k: full[k] for k in ("total", "ranking", "at", "next_cursor")
    }
    # The default sends every field but the week of hours (computed only when asked for).
    assert list(full["items"][0]) == ["merchant", "distance_m", *HOURS, "deal", "next_deal"]
    assert list(full["items"][0]["merchant"]) == MERCHANT
    assert nearby(client, fields="deal")["items"][0] == {"merchant": {"id": bar}, "deal": None}
    # A cursor holds across a change of fields, like limit.
    first = nearby(client, limit=1, fields="name")
    assert nearby(client, limit=1, cursor=first["next_cursor"])["items"][0]["merchant"]["id"] == kiosk


def test_nearby_sends_the_week_of_hours_at_at_when_asked(engine: Engine, client: FlaskClient) -> None:
    with_hours(engine, client)
    page = nearby(client, fields="hours,open_now,closes_at")
    bar_item = page["items"][0]

    assert bar_item["open_now"] is True and bar_item["closes_at"] == "2026-11-28T02:00:00+02:00"
    hours = bar_item["hours"]
    assert hours["today"] == hours["week"][4]
    assert hours["today"] == {
        "date": "2026-11-27",
        "weekday": "fri",
        "intervals": [{"opens": "18:00", "closes": "02:00", "closes_next_day": True, "state": "open"}],
        "text": "Friday: 18:00\N{EN DASH}02:00",
    }
    assert hours["week"][6]["text"] == "Sunday: Closed"
    assert [i["hours"] is None for i in page["items"]] == [False, False, True]
    # The same in GeoJSON, in the flat properties.
    collection = nearby(client, fields="hours", format="geojson")
    assert [f["properties"] for f in collection["features"]] == [
        {"id": i["merchant"]["id"], "hours": i["hours"]} for i in page["items"]
    ]
    # An `at` in another week gives that week.
    later = nearby(client, fields="hours", at="2026-12-02T12:00:00+02:00")["items"][1]["hours"]
    assert later["week"][0]["date"] == "2026-11-30" and later["today"]["weekday"] == "wed"


def test_the_box_sends_the_fields_named(engine: Engine, client: FlaskClient) -> None:
    bar, kiosk, unknown = with_hours(engine, client)
    full = get(client, "/v1/merchants", bbox=BOX, at=AT)
    lean = get(client, "/v1/merchants", bbox=BOX, at=AT, fields="name,deal,hours")

    assert [f["id"] for f in full["features"]] == [bar, kiosk, unknown]
    assert list(full["features"][0]["properties"]) == [*MERCHANT, *HOURS, "deal"]
    assert [f["geometry"] for f in lean["features"]] == [f["geometry"] for f in full["features"]]
    # In the model's order, not the view's: the body went through MerchantCollectionOut
    # (flask-cors's decorator used to make it a response before lbs.api.responses.serve).
    assert [list(f["properties"]) for f in lean["features"]] == [["id", "name", "hours", "deal"]] * 3
    assert lean["features"][1]["properties"]["hours"]["today"]["text"] == "Friday: Open 24 hours"
    assert (lean["total"], lean["next_cursor"], lean["at"]) == (
        full["total"],
        full["next_cursor"],
        full["at"],
    )
    clustered = client.get(
        "/v1/merchants", query_string={"bbox": BOX, "cluster": "true", "zoom": 12, "fields": "id"}
    )
    assert_problem(clustered, 400)
    assert clustered.get_json()["field"] == "fields"


def test_trimmed_items_are_smaller(engine: Engine, client: FlaskClient) -> None:
    _, key = make_merchant(client, *CENTRE)
    create_deal(client, key, publish=True, valid_from=datetime.now(UTC).isoformat())
    with_hours(engine, client)
    query = {"lat": CENTRE[0], "lon": CENTRE[1], "sort": "distance"}
    full = client.get("/v1/nearby", query_string=query).get_data()
    lean = client.get("/v1/nearby", query_string={**query, "fields": "name,distance_m,deal"}).get_data()
    assert len(lean) < 0.6 * len(full)
