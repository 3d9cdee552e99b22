"""/map and /widget.js: the page embeds the widget with its settings (and the merchant whose
popup to open); the scripts, styles and the vendored Leaflet are served from here (no CDN);
bad page parameters are a 400."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from tests.problems import assert_problem


def test_the_widget_and_leaflet_come_from_this_server(client: FlaskClient) -> None:
    script = client.get("/widget.js")
    leaflet = client.get("/static/leaflet/leaflet.js")
    css = client.get("/static/leaflet/leaflet.css")

    assert script.status_code == 200 and script.mimetype == "text/javascript"
    text = script.get_data(as_text=True)
    assert (
        "static/leaflet/leaflet.js" in text
        and "/v1/merchants?bbox=" in text
        and "https://" not in text.split("*/", 1)[1]
    )
    assert leaflet.status_code == 200 and b"Leaflet 1.9.4" in leaflet.get_data()
    assert css.status_code == 200
    assert "static/widget.css" in text and "static/widget-deals.js" in text
    for path in ("/static/widget.css", "/static/widget-deals.js"):
        assert client.get(path).status_code == 200, path


def test_the_map_page_embeds_the_widget(make_app: Callable[..., OpenAPI]) -> None:
    plain = make_app().test_client().get("/map?lat=60.2&lon=24.9&radius=500").get_data(as_text=True)
    tiled = make_app(map_tiles_url="https://tiles.example/{z}/{x}/{y}.png").test_client().get("/map")

    assert "data-lbs-map" in plain and 'data-lat="60.2"' in plain and 'data-radius="500.0"' in plain
    assert '<script src="/widget.js">' in plain and "data-tiles" not in plain
    assert 'data-tiles="https://tiles.example/{z}/{x}/{y}.png"' in tiled.get_data(as_text=True)
    assert "data-merchant" not in plain


def test_the_map_page_opens_a_merchant_an_embedded_map_links_to(client: FlaskClient) -> None:
    page = client.get("/map?lat=60.2&lon=24.9&radius=150&merchant=42").get_data(as_text=True)

    assert 'data-merchant="42"' in page


def test_bad_map_page_parameters_are_a_400(client: FlaskClient) -> None:
    assert_problem(client.get("/map?lat=91"), 400, "lat")
    assert_problem(client.get("/map?radius=0"), 400, "radius")
    assert_problem(client.get("/map?merchant=0"), 400, "merchant")
