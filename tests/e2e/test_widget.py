"""The map widget in real headless Chromium against a live gunicorn: /map loads, markers
come from the API, a click opens the popup, panning loads the new place's merchants,
zooming out shows clusters that add up, "Near me" follows the browser's position, and
an unreachable tile server changes none of it. A screenshot is kept as a test artifact."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from lbs.services.deals import DealFields, create_deal
from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.server import REPO, gunicorn
from tests.factories import Seeded, merchant, seed

CENTRE = (60.1699, 24.9384)
EAST = (60.1699, 24.9684)  # ~1.7 km east
ARTIFACTS = Path(os.environ.get("LBS_TEST_ARTIFACTS", REPO / "test-artifacts"))


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


def town(engine: Engine) -> tuple[list[Seeded], list[Seeded], int]:
    """A block at CENTRE (one with a deal) and one at EAST: (centre, east, deal merchant id)."""
    rows = [
        merchant(f"Centre {k}", CENTRE[0] + 0.0003 * (k % 4 - 1.5), CENTRE[1] + 0.0005 * (k // 4 - 1), "cafe")
        for k in range(12)
    ]
    rows += [
        merchant(f"East {k}", EAST[0] + 0.0003 * (k % 3 - 1), EAST[1] + 0.0004 * (k // 3), "bar")
        for k in range(6)
    ]
    seeded = seed(engine, rows)
    now = datetime.now(UTC)
    deal = DealFields(
        title="Coffee -30 %",
        kind="percent_off",
        currency="EUR",
        list_price_minor=500,
        deal_price_minor=350,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=10),
        publish=True,
    )
    with Session(engine) as session, session.begin():
        create_deal(session, seeded[0].id, deal, now)
    return seeded[:12], seeded[12:], seeded[0].id


def marker_ids(page: Page) -> set[int]:
    return {int(i) for i in page.eval_on_selector_all(".lbs-marker", "els => els.map(e => e.dataset.id)")}


def wait_until(page: Page, expression: str, timeout_s: float = 15.0) -> None:
    """Poll a JavaScript expression from here until it is true. (Playwright's wait_for_function
    evaluates its predicate with eval inside the page, which /map's CSP forbids.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true within {timeout_s} s: {expression}"
        time.sleep(0.05)


def wait_ready(page: Page) -> None:
    wait_until(page, "document.getElementById('map').dataset.lbsState === 'ready'")


def csp_violations(page: Page) -> list[str]:
    """Console errors of the Content-Security-Policy, as the page reports them from now on."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


def test_the_map_shows_merchants_popups_pans_clusters_and_finds_me(
    database_url: str, engine: Engine, browser: Browser, tmp_path: Path
) -> None:
    centre, east, with_deal = town(engine)
    # A tile server nobody listens on: the base map fails, the merchants must not.
    env = {"LBS_MAP_TILES_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png"}
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=2, env=env) as server:
        context = browser.new_context(
            viewport={"width": 1000, "height": 700},
            geolocation={"latitude": EAST[0], "longitude": EAST[1]},
            permissions=["geolocation"],
        )
        page = context.new_page()
        violations = csp_violations(page)
        page.goto(f"{server.base_url}/map?lat={CENTRE[0]}&lon={CENTRE[1]}&radius=120")
        page.wait_for_selector(".lbs-marker", timeout=15_000)
        wait_ready(page)

        assert marker_ids(page) == {s.id for s in centre}
        assert page.locator(f".lbs-marker[data-id='{with_deal}'] .lbs-badge").count() == 1
        assert "© OpenStreetMap contributors" in page.inner_text(".leaflet-control-attribution")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"widget-{Path(database_url).name[:40]}.png"))

        page.click(f".lbs-marker[data-id='{with_deal}']")
        popup = page.wait_for_selector(".leaflet-popup-content").inner_text()
        assert "Centre 0" in popup and "cafe" in popup and "Deal: Coffee -30 %" in popup and "m away" in popup

        page.evaluate(f"document.getElementById('map').lbsMap.panTo([{EAST[0]}, {EAST[1]}])")
        wait_until(page, f"document.querySelector(\".lbs-marker[data-id='{east[0].id}']\") !== null")
        wait_ready(page)
        assert marker_ids(page) == {s.id for s in east}

        page.evaluate(f"document.getElementById('map').lbsMap.setView([{CENTRE[0]}, {CENTRE[1]}], 11)")
        page.wait_for_selector(".lbs-cluster", timeout=15_000)
        wait_ready(page)
        counts = page.eval_on_selector_all(".lbs-cluster", "els => els.map(e => e.lastChild.textContent)")
        assert sum(int(c) for c in counts) == len(centre) + len(east)

        page.click(".lbs-near-me")
        wait_until(
            page, f"Math.abs(document.getElementById('map').lbsMap.getCenter().lng - {EAST[1]}) < 1e-3"
        )
        wait_ready(page)
        assert {s.id for s in east} <= marker_ids(page)
        assert violations == []  # the widget and Leaflet run under /map's policy
        context.close()


def test_a_crowd_in_view_shows_as_clusters_not_a_sample(
    database_url: str, engine: Engine, browser: Browser, tmp_path: Path
) -> None:
    rows = [
        merchant(f"Crowd {k}", CENTRE[0] + 0.00005 * (k % 12), CENTRE[1] + 0.0001 * (k // 12))
        for k in range(130)
    ]
    seed(engine, rows)
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=1) as server:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(f"{server.base_url}/map?lat={CENTRE[0]}&lon={CENTRE[1]}&radius=150")
        page.wait_for_selector(".lbs-cluster", timeout=15_000)
        wait_ready(page)

        assert page.evaluate("document.getElementById('map').lbsMap.getZoom()") >= 15
        assert page.locator(".lbs-marker").count() == 0
        counts = page.eval_on_selector_all(".lbs-cluster", "els => els.map(e => e.lastChild.textContent)")
        assert sum(int(c) for c in counts) == 130
        page.close()
