"""open_now=true in /v1/nearby: exactly the merchants open at `at`, in their own zone, on
every path (distance, deals, relevance without a model), paged once each, totals exact."""

from __future__ import annotations

import random
from datetime import datetime

from flask.testing import FlaskClient
from sqlalchemy import Engine

from lbs.services.hours import hours_at
from tests.conftest import OPERATOR
from tests.deals_factory import create_deal, make_merchant, transition
from tests.factories import merchant, seed
from tests.lbs.api.pages import walk_nearby
from tests.oracle import destination

CENTRE = (60.1699, 24.9384)
AT = "2026-11-27T23:00:00+02:00"  # a Friday night in Helsinki
HOURS = [
    "Fr-Sa 18:00-02:00",  # open
    "Mo-Fr 09:00-18:00",  # closed
    "24/7",  # open
    "off",  # closed
    "Mo-Su 22:00-23:30",  # open
    None,  # unknown: left out
]


def seed_hours(engine: Engine, n: int = 60) -> dict[int, bool]:
    """n merchants within 900 m with hours from HOURS: id -> open at AT."""
    rng = random.Random(11)
    rows = []
    for k in range(n):
        lat, lon = destination(*CENTRE, rng.uniform(0, 360), rng.uniform(0, 900))
        rows.append(merchant(f"m{k}", lat, lon).model_copy(update={"opening_hours": HOURS[k % len(HOURS)]}))
    seeded = seed(engine, rows)
    at = datetime.fromisoformat(AT)
    return {
        s.id: bool(hours_at(r.opening_hours, "Europe/Helsinki", r.lat, r.lon, at).open_now)
        for s, r in zip(seeded, rows, strict=True)
    }


def test_open_now_keeps_exactly_the_open_merchants_and_pages_them_once(
    engine: Engine, client: FlaskClient
) -> None:
    is_open = seed_hours(engine)
    params = {"lat": CENTRE[0], "lon": CENTRE[1], "radius_m": 1000, "at": AT, "sort": "distance"}
    everything = walk_nearby(client, params)

    walk = walk_nearby(client, {**params, "open_now": "true"}, limits=lambda page: 3 + page % 4)

    expected = [i for i in everything.ids if is_open[i]]
    assert len(expected) == 30 and walk.ids == expected  # distance order kept, each once
    assert set(walk.totals) == {30}
    assert {item["open_now"] for item in walk.items} == {True}
    # Without a model the default sort is distance: the same answer.
    default = walk_nearby(client, {k: v for k, v in params.items() if k != "sort"} | {"open_now": "true"})
    assert default.ids == expected


def test_a_cursor_of_another_open_now_is_refused(engine: Engine, client: FlaskClient) -> None:
    seed_hours(engine, 12)
    params = {"lat": CENTRE[0], "lon": CENTRE[1], "at": AT, "limit": 2}
    first = client.get("/v1/nearby", query_string={**params, "open_now": "true"}).get_json()

    response = client.get("/v1/nearby", query_string={**params, "cursor": first["next_cursor"]})

    assert response.status_code == 400 and response.get_json()["field"] == "cursor"
    assert "open_now" in response.get_json()["detail"]


def test_open_now_with_deals_keeps_the_open_ones(client: FlaskClient) -> None:
    shops = {}
    for name, expression in (("Open deal", "24/7"), ("Closed deal", "off")):
        merchant_id, key = make_merchant(client, *CENTRE, name=name)
        patched = client.patch(
            f"/v1/merchants/{merchant_id}", json={"opening_hours": expression}, headers=OPERATOR
        )
        assert patched.status_code == 200, patched.get_data(as_text=True)
        transition(client, key, create_deal(client, key)["id"], "publish")
        shops[name] = merchant_id
    params = {"lat": CENTRE[0], "lon": CENTRE[1], "has_deal": "true"}

    both = client.get("/v1/nearby", query_string=params).get_json()
    open_only = client.get("/v1/nearby", query_string={**params, "open_now": "true"}).get_json()

    assert both["total"] == 2
    assert open_only["total"] == 1 and [i["merchant"]["id"] for i in open_only["items"]] == [
        shops["Open deal"]
    ]
