"""GET /v1/tiles/{z}/{x}/{y}.mvt: vector tiles that decode to the merchants inside (or
their clusters at low zoom), cacheable, and a 400 for a tile that does not exist."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from lbs.services.tiles import EXTENT, MERCHANTS_FROM_ZOOM
from tests.conftest import OPERATOR
from tests.deals_factory import create_deal, make_merchant, transition
from tests.factories import Seeded, merchant, seed
from tests.problems import assert_problem

MVT = "application/vnd.mapbox-vector-tile"
ORIGIN = {"Origin": "https://map-widget.example"}


def tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def decoded(client: FlaskClient, z: int, x: int, y: int) -> dict:
    response = client.get(f"/v1/tiles/{z}/{x}/{y}.mvt")
    assert response.status_code == 200 and response.mimetype == MVT
    return mapbox_vector_tile.decode(response.get_data(), default_options={"y_coord_down": True})


@pytest.fixture
def block(engine: Engine) -> list[Seeded]:
    # A few streets of Helsinki's centre, all inside one zoom-16 tile, and one far away.
    rows = [
        merchant(f"m{k}", 60.1690 + 0.0002 * (k % 5), 24.9400 + 0.0003 * (k // 5), "bar") for k in range(20)
    ]
    return seed(engine, [*rows, merchant("far", 61.0, 25.5)])


def test_a_merchant_tile_holds_the_merchants_inside_it(block: list[Seeded], client: FlaskClient) -> None:
    x, y = tile_of(60.1695, 24.9410, 16)

    layers = decoded(client, 16, x, y)

    features = layers["merchants"]["features"]
    assert sorted(f["id"] for f in features) == sorted(s.id for s in block if s.name != "far")
    assert {f["properties"]["category"] for f in features} == {"bar"}
    assert all(0 <= c <= EXTENT for f in features for c in f["geometry"]["coordinates"])
    assert all(f["properties"]["has_deal"] is False for f in features)


def test_low_zoom_tiles_hold_clusters_that_add_up(block: list[Seeded], client: FlaskClient) -> None:
    x, y = tile_of(60.1695, 24.9410, MERCHANTS_FROM_ZOOM - 4)

    layers = decoded(client, MERCHANTS_FROM_ZOOM - 4, x, y)

    assert list(layers) == ["clusters"]
    assert sum(f["properties"]["count"] for f in layers["clusters"]["features"]) == 20


def test_a_tile_shows_which_merchants_have_deals(client: FlaskClient) -> None:
    with_deal, key = make_merchant(client, 60.1695, 24.9410, name="With deal")
    transition(client, key, create_deal(client, key)["id"], "publish")
    x, y = tile_of(60.1695, 24.9410, 16)

    (feature,) = decoded(client, 16, x, y)["merchants"]["features"]

    assert feature["id"] == with_deal and feature["properties"]["has_deal"] is True


@pytest.mark.parametrize("z", [16, MERCHANTS_FROM_ZOOM - 4])
def test_a_kept_tile_follows_deals_and_moves(client: FlaskClient, z: int) -> None:
    """Tiles are kept per worker (lbs.services.view_cache): a kept one must not outlive a
    deal's publication nor a merchant's move."""
    with_deal, key = make_merchant(client, 60.1695, 24.9410, name="With deal")
    deal = create_deal(client, key)
    x, y = tile_of(60.1695, 24.9410, z)

    def shown() -> list[tuple[int, bool]]:
        layers = decoded(client, z, x, y)
        if "clusters" in layers:
            return [
                (f["properties"]["count"], f["properties"]["with_deals"] > 0)
                for f in layers["clusters"]["features"]
            ]
        return [
            (f["id"], f["properties"]["has_deal"])
            for f in layers.get("merchants", {"features": []})["features"]
        ]

    first = with_deal if z >= MERCHANTS_FROM_ZOOM else 1
    assert shown() == shown() == [(first, False)]  # a draft; the second answer is the kept one
    transition(client, key, deal["id"], "publish")
    assert shown() == [(first, True)]
    moved = client.patch(f"/v1/merchants/{with_deal}", json={"lat": 10.0, "lon": 0.0}, headers=OPERATOR)
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert shown() == []


def test_an_empty_tile_is_empty_and_tiles_are_cacheable(block: list[Seeded], client: FlaskClient) -> None:
    empty = client.get("/v1/tiles/16/0/0.mvt")
    assert empty.status_code == 200 and empty.get_data() == b""

    x, y = tile_of(60.1695, 24.9410, 16)
    first = client.get(f"/v1/tiles/16/{x}/{y}.mvt", headers=ORIGIN)
    again = client.get(f"/v1/tiles/16/{x}/{y}.mvt", headers={"If-None-Match": first.headers["ETag"]})

    assert first.headers["ETag"] and "max-age=60" in first.headers["Cache-Control"]
    assert first.headers.get("Access-Control-Allow-Origin") in {"*", ORIGIN["Origin"]}
    assert again.status_code == 304 and again.get_data() == b""


@pytest.mark.parametrize(
    ("url", "field"),
    [("/v1/tiles/23/0/0.mvt", "z"), ("/v1/tiles/2/4/0.mvt", "x"), ("/v1/tiles/2/0/4.mvt", "y")],
)
def test_a_tile_that_does_not_exist_is_a_400(client: FlaskClient, url: str, field: str) -> None:
    assert_problem(client.get(url), 400, field)
