"""Operations endpoints: health, readiness, metrics, OpenAPI and docs; CORS on reads only."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from lbs.app import create_app
from tests.conftest import OPERATOR, OPERATOR_TOKEN_SHA256, TEST_SECRET_KEY
from tests.databases import migrate_url
from tests.factories import merchant, seed
from tests.problems import assert_problem

ORIGIN = {"Origin": "https://map-widget.example"}


def metric(client: FlaskClient, name: str, **labels: str) -> float | None:
    response = client.get("/metrics", headers=OPERATOR)
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@pytest.fixture
def unmigrated_app(empty_database_url: str) -> Iterator[OpenAPI]:
    app = create_app(
        test_config={
            "database_url": empty_database_url,
            "index_refresh_s": 0.0,
            "operator_token_sha256": OPERATOR_TOKEN_SHA256,
            "secret_key": TEST_SECRET_KEY,
        }
    )
    yield app
    app.extensions["lbs"].rate_limits.close()
    app.extensions["lbs"].engine.dispose()


def test_the_landing_page_links_the_docs_and_an_open_now_query(engine: Engine, client: FlaskClient) -> None:
    seed(engine, [merchant("Kahvila", 60.1701, 24.9402), merchant("Baari", 60.1702, 24.9403, "bar")])

    response = client.get("/")

    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "2 merchants" in page and "© OpenStreetMap contributors" in page
    links = [a.split('"')[0].replace("&amp;", "&") for a in page.split('href="')[1:]]
    assert {"/docs/swagger", "/openapi.json", "/readyz", "/map"} <= set(links)
    assert "/metrics" not in links and "<code>/metrics</code>" in page  # the operator's
    for link in links:
        assert client.get(link).status_code == 200, link  # every link on it works
    assert "/v1/nearby?lat=60.1699&lon=24.9384&open_now=true" in links


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_the_loaded_index(engine: Engine, client: FlaskClient) -> None:
    seed(
        engine,
        [merchant(f"m{i}", 1.0, 1.0 + i / 1000) for i in range(5)]
        + [merchant("off", 1.0, 1.0, status="inactive")],
    )

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json()["index_merchants"] == 5


def test_readyz_is_a_503_problem_until_the_database_is_migrated(
    unmigrated_app: OpenAPI, empty_database_url: str
) -> None:
    client = unmigrated_app.test_client()

    assert_problem(client.get("/readyz"), 503)
    assert client.get("/healthz").status_code == 200

    migrate_url(empty_database_url)
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_data(as_text=True)
    assert client.get("/v1/nearby?lat=1&lon=1").get_json()["total"] == 0


def test_nearby_before_migration_is_a_503_problem_not_a_500(unmigrated_app: OpenAPI) -> None:
    client = unmigrated_app.test_client()

    assert_problem(client.get("/v1/nearby?lat=1&lon=1"), 503)


def test_metrics_count_requests_by_route_and_show_the_index_size(engine: Engine, client: FlaskClient) -> None:
    a, _, _ = seed(
        engine, [merchant("a", 1.0, 1.0), merchant("b", 1.0, 1.001), merchant("c", 1.0, 1.0, status="closed")]
    )
    ok = {"method": "GET", "route": "/v1/nearby", "status": "200"}
    bad = {**ok, "status": "400"}
    ok_before = metric(client, "lbs_http_requests_total", **ok) or 0.0
    bad_before = metric(client, "lbs_http_requests_total", **bad) or 0.0

    assert client.get("/v1/nearby?lat=1&lon=1").status_code == 200
    assert client.get("/v1/nearby?lat=1&lon=1").status_code == 200
    assert client.get("/v1/nearby?lat=100&lon=1").status_code == 400

    assert metric(client, "lbs_http_requests_total", **ok) == ok_before + 2
    assert metric(client, "lbs_http_requests_total", **bad) == bad_before + 1
    assert metric(client, "lbs_http_request_duration_seconds_count", method="GET", route="/v1/nearby")
    assert metric(client, "lbs_index_merchants") == 2
    paused = client.patch(f"/v1/merchants/{a.id}", json={"status": "inactive"}, headers=OPERATOR)
    assert paused.status_code == 200
    client.get("/v1/nearby?lat=1&lon=1")
    assert metric(client, "lbs_index_merchants") == 1


def test_metrics_label_by_route_template_not_by_path(engine: Engine, client: FlaskClient) -> None:
    (shop,) = seed(engine, [merchant("a", 1.0, 1.0)])

    client.get(f"/v1/merchants/{shop.id}")

    assert metric(client, "lbs_http_requests_total", route="/v1/merchants/<int:merchant_id>", status="200")
    assert metric(client, "lbs_http_requests_total", route=f"/v1/merchants/{shop.id}") is None


def test_openapi_document_is_3_1_and_describes_nearby(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()

    assert document["openapi"].startswith("3.1")
    nearby = document["paths"]["/v1/nearby"]["get"]
    names = {p["name"] for p in nearby["parameters"]}
    assert {"lat", "lon", "radius_m", "limit", "cursor", "category", "sort", "format"} <= names
    assert "post" in document["paths"]["/v1/merchants"]
    assert "patch" in document["paths"]["/v1/merchants/{merchant_id}"]


def test_docs_go_straight_to_the_interactive_page(client: FlaskClient) -> None:
    chooser = client.get("/docs/")
    response = client.get("/docs/", follow_redirects=True)

    assert chooser.status_code == 302 and chooser.headers["Location"] == "/docs/swagger"
    assert response.status_code == 200
    assert response.mimetype == "text/html" and b"swagger-ui" in response.data


def test_cors_allows_the_read_endpoints(engine: Engine, client: FlaskClient) -> None:
    (shop,) = seed(engine, [merchant("a", 1.0, 1.0)])

    for url in ["/v1/nearby?lat=1&lon=1", f"/v1/merchants/{shop.id}"]:
        response = client.get(url, headers=ORIGIN)
        assert response.headers.get("Access-Control-Allow-Origin") in {"*", ORIGIN["Origin"]}, url


def test_cors_allows_only_the_configured_origins(engine: Engine, make_app: Callable[..., OpenAPI]) -> None:
    seed(engine, [merchant("a", 1.0, 1.0)])
    client = make_app(cors_origins="https://map-widget.example, https://kahvila.example").test_client()

    allowed = client.get("/v1/nearby?lat=1&lon=1", headers=ORIGIN)
    other = client.get("/v1/nearby?lat=1&lon=1", headers={"Origin": "https://elsewhere.example"})

    assert allowed.status_code == other.status_code == 200
    assert allowed.headers.get("Access-Control-Allow-Origin") == ORIGIN["Origin"]
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_does_not_allow_the_write_endpoints(engine: Engine, client: FlaskClient) -> None:
    (shop,) = seed(engine, [merchant("a", 1.0, 1.0)])
    body = {"name": "x", "category": "bar", "lat": 1.0, "lon": 1.0}

    post = client.post("/v1/merchants", json=body, headers={**ORIGIN, **OPERATOR})
    preflight_post = client.options(
        "/v1/merchants", headers={**ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    preflight_patch = client.options(
        f"/v1/merchants/{shop.id}",
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization",
        },
    )

    assert "Access-Control-Allow-Origin" not in post.headers
    assert "Access-Control-Allow-Origin" not in preflight_post.headers
    allowed = preflight_patch.headers.get("Access-Control-Allow-Methods", "")
    assert "PATCH" not in allowed.upper(), "a browser may not PATCH from another origin"
