"""The map widget in real headless Chromium against a live gunicorn: /map loads, markers
come from the API, a popup shows the deal's price, list price and end and claims a voucher
from the real server (a prepaid deal's says it is paid ahead online, with its refund terms,
and offers no claim), panning loads the new place's merchants, zooming out shows clusters
that add up, every label sits inside its marker with readable contrast, "Near me" follows
the browser's position, a crowd is shown whole (clusters, then every merchant a page at a
time), and a map embedded on another site sends its claims to the server's own page.
A screenshot is kept as a test artifact."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from lbs.models import Deal
from lbs.services.deals import DealFields, create_deal
from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.server import REPO, gunicorn
from tests.e2e.widget_labels import assert_labels_legible, contrast
from tests.factories import Seeded, merchant, seed

CENTRE = (60.1699, 24.9384)
EAST = (60.1699, 24.9684)  # ~1.7 km east
ARTIFACTS = Path(os.environ.get("LBS_TEST_ARTIFACTS", REPO / "test-artifacts"))
VOUCHER_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
MAP = "document.getElementById('map')"


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


def add_deal(engine: Engine, merchant_id: int, title: str, quantity: int | None = None, **terms: str) -> int:
    """A deal claimed free, or with payment="prepaid" (and a refund_policy) one paid online."""
    now = datetime.now(UTC)
    deal = DealFields(
        title=title,
        kind="percent_off",
        currency="EUR",
        list_price_minor=500,
        deal_price_minor=350,
        quantity_total=quantity,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=10),
        publish=True,
        **terms,
    )
    with Session(engine) as session, session.begin():
        return create_deal(session, merchant_id, deal, now, takes_payments=bool(terms)).id


def town(engine: Engine) -> tuple[list[Seeded], list[Seeded]]:
    """A block at CENTRE and one at EAST."""
    rows = [
        merchant(f"Centre {k}", CENTRE[0] + 0.0003 * (k % 4 - 1.5), CENTRE[1] + 0.0005 * (k // 4 - 1), "cafe")
        for k in range(12)
    ]
    rows += [
        merchant(f"East {k}", EAST[0] + 0.0003 * (k % 3 - 1), EAST[1] + 0.0004 * (k // 3), "bar")
        for k in range(6)
    ]
    seeded = seed(engine, rows)
    return seeded[:12], seeded[12:]


def marker_ids(page: Page) -> set[int]:
    ids = page.eval_on_selector_all(".lbs-marker[data-id]", "els => els.map(e => e.dataset.id)")
    return {int(i) for i in ids}


def wait_until(page: Page, expression: str, timeout_s: float = 15.0) -> None:
    """Poll a JavaScript expression from here until it is true. (Playwright's wait_for_function
    evaluates its predicate with eval inside the page, which /map's CSP forbids.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true within {timeout_s} s: {expression}"
        time.sleep(0.05)


def wait_ready(page: Page) -> None:
    wait_until(page, f"{MAP}.dataset.lbsState === 'ready'")


def zoom_to(page: Page, zoom: int) -> None:
    page.evaluate(f"{MAP}.lbsMap.setZoom({zoom})")
    wait_until(page, f"{MAP}.lbsMap.getZoom() === {zoom} && {MAP}.dataset.lbsState === 'loading'")
    wait_ready(page)


def open_popup(page: Page, merchant_id: int) -> None:
    """Click the merchant's marker until its popup is open: a refresh (a popup's autopan moved
    the map) redraws every marker but the open one, and a click on a marker being replaced
    is lost, as a person's would be, who clicks again."""
    for _ in range(5):
        page.click(f".lbs-marker[data-id='{merchant_id}']")
        try:
            page.wait_for_selector(f".lbs-popup[data-id='{merchant_id}']", timeout=3000)
            return
        except PlaywrightTimeout:
            wait_ready(page)
    raise AssertionError(f"the popup of merchant {merchant_id} did not open")


def shown_total(page: Page) -> int:
    """What the clusters and the markers drawn for clusters of one add up to."""
    counts = page.eval_on_selector_all(".lbs-cluster .lbs-count", "els => els.map(e => e.textContent)")
    return sum(int(c) for c in counts) + page.locator(".lbs-marker[data-cell]").count()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csp_violations(page: Page) -> list[str]:
    """Console errors of the Content-Security-Policy, as the page reports them from now on."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


@contextmanager
def site_serving(html: str) -> Iterator[str]:
    """A page of another site (another port on loopback: Chromium keeps a public page from
    reading loopback servers), served over real HTTP until the block ends."""

    class ShopPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ShopPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def helsinki_clock(at: datetime) -> str:
    """A time as en-US Chromium writes it on a Helsinki merchant's clock: "Sun, Dec 14, 10:31 AM"."""
    local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(ZoneInfo("Europe/Helsinki"))
    return f"{local:%a}, {local:%b} {local.day}, {local.hour % 12 or 12}:{local:%M} {local:%p}"


def test_the_contrast_check_refuses_the_old_cluster_labels() -> None:
    """The check itself: the old clusters (85 % blue over the pale page) fail it."""
    old_fill, pale = "rgba(31, 111, 235, 0.85)", "rgb(232, 238, 243)"
    assert contrast("rgb(255, 255, 255)", ["rgb(0, 0, 0)"]) == pytest.approx(21)
    assert contrast("rgb(255, 211, 61)", [old_fill, pale]) < 4.5  # the yellow "44 %"
    assert contrast("rgb(255, 255, 255)", [old_fill, pale]) < 4.5  # the count
    assert contrast("rgb(255, 255, 255)", ["rgb(30, 64, 175)", pale]) > 8.5  # the count now


def test_the_map_shows_merchants_deals_claims_pans_clusters_and_finds_me(
    database_url: str, engine: Engine, browser: Browser, tmp_path: Path
) -> None:
    centre, east = town(engine)
    with_deal = centre[0].id
    deal_id = add_deal(engine, with_deal, "Coffee -30 %")
    last_one = add_deal(engine, centre[5].id, "Bun -30 %", quantity=1)
    add_deal(engine, centre[3].id, "Lunch paid ahead -30 %", payment="prepaid", refund_policy="none")
    # A tile server nobody listens on: the base map fails, the merchants must not.
    env = {"LBS_MAP_TILES_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png"}
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=2, env=env) as server:
        context = browser.new_context(
            viewport={"width": 1000, "height": 700},
            locale="en-US",
            geolocation={"latitude": EAST[0], "longitude": EAST[1]},
            permissions=["geolocation"],
        )
        page = context.new_page()
        violations = csp_violations(page)
        page.goto(f"{server.base_url}/map?lat={CENTRE[0]}&lon={CENTRE[1]}&radius=120")
        page.wait_for_selector(".lbs-marker", timeout=15_000)
        wait_ready(page)

        assert marker_ids(page) == {s.id for s in centre}
        assert (
            page.inner_text(f".lbs-marker[data-id='{with_deal}'] .lbs-badge") == "\u221230 %"
        )  # a minus sign: off the price
        assert "© OpenStreetMap contributors" in page.inner_text(".leaflet-control-attribution")
        assert_labels_legible(page)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

        page.click(f".lbs-marker[data-id='{with_deal}']")
        popup = page.wait_for_selector(".leaflet-popup-content").inner_text()
        with Session(engine) as session:
            ends_at = session.scalars(select(Deal.valid_until).where(Deal.id == deal_id)).one()
        assert "Centre 0" in popup and "cafe" in popup and "m away" in popup and "Coffee -30 %" in popup
        assert "€3.50" in popup and "€5.00" in popup
        assert f"Claimable until {helsinki_clock(ends_at)}" in popup.replace("\u202f", " ")
        struck = "getComputedStyle(document.querySelector('.lbs-list-price')).textDecorationLine"
        assert page.evaluate(struck) == "line-through"

        # Claimed from the real server: a new user's token kept by the page, a voucher shown.
        page.click(".lbs-popup button.lbs-claim")
        code = page.wait_for_selector(".lbs-voucher .lbs-code").inner_text()
        page.screenshot(path=str(ARTIFACTS / f"widget-{Path(database_url).name[:40]}.png"))
        token = page.evaluate("localStorage.getItem('lbs.userToken')")
        assert VOUCHER_CODE.match(code) and token.startswith("lbs_ut_")
        mine = requests.get(f"{server.base_url}/v1/me/vouchers", headers=bearer(token), timeout=10)
        assert [(v["deal_id"], v["code"]) for v in mine.json()["items"]] == [(deal_id, code)]
        # Opened again, the popup shows the voucher held, not a second button.
        page.click(".leaflet-popup-close-button")
        page.click(f".lbs-marker[data-id='{with_deal}']")
        assert page.wait_for_selector(".lbs-popup .lbs-code").inner_text() == code
        assert page.locator(".lbs-popup button.lbs-claim").count() == 0
        # The next visit is the same person (the token kept): a claim past the deal's
        # per-user limit shows the voucher held.
        page.reload()
        page.wait_for_selector(f".lbs-marker[data-id='{with_deal}']", timeout=15_000)
        page.click(f".lbs-marker[data-id='{with_deal}']")
        page.click(".lbs-popup button.lbs-claim")
        assert page.wait_for_selector(".lbs-popup .lbs-code").inner_text() == code

        # The last unit goes to someone else while the popup is open (opened first: a map
        # drawn after the sale, by a refresh, would show no deal there at all): the answer is
        # said, nothing is held.
        page.click(".leaflet-popup-close-button")
        open_popup(page, centre[5].id)
        page.wait_for_selector(f".lbs-popup[data-id='{centre[5].id}'] button.lbs-claim")
        other = requests.post(f"{server.base_url}/v1/users", timeout=10).json()["token"]
        taken = requests.post(
            f"{server.base_url}/v1/deals/{last_one}/claim",
            headers={**bearer(other), "Idempotency-Key": "someone-else"},
            timeout=10,
        )
        assert taken.status_code == 201
        page.click(".lbs-popup button.lbs-claim")
        assert page.wait_for_selector(".lbs-popup .lbs-problem").inner_text() == "Sold out, sorry."
        mine = requests.get(f"{server.base_url}/v1/me/vouchers", headers=bearer(token), timeout=10)
        assert [v["deal_id"] for v in mine.json()["items"]] == [deal_id]
        page.click(".leaflet-popup-close-button")

        # A prepaid deal is paid ahead online, in an app: its terms, and no claim to make.
        open_popup(page, centre[3].id)
        paid_ahead = page.wait_for_selector(f".lbs-popup[data-id='{centre[3].id}'] .lbs-prepaid").inner_text()
        assert paid_ahead == "Pay ahead online: €3.50 · no refunds"
        assert "Lunch paid ahead -30 %" in page.inner_text(".lbs-popup")
        assert "On sale until" in page.inner_text(".lbs-popup .lbs-ends")
        assert page.locator(".lbs-popup .lbs-claim").count() == 0
        page.click(".leaflet-popup-close-button")

        page.evaluate(f"{MAP}.lbsMap.panTo([{EAST[0]}, {EAST[1]}])")
        wait_until(page, f"document.querySelector(\".lbs-marker[data-id='{east[0].id}']\") !== null")
        wait_ready(page)
        assert marker_ids(page) == {s.id for s in east}

        page.evaluate(f"{MAP}.lbsMap.setView([{CENTRE[0]}, {CENTRE[1]}], 11)")
        page.wait_for_selector(".lbs-cluster", timeout=15_000)
        wait_ready(page)
        assert shown_total(page) == len(centre) + len(east)
        assert "3 deals" in page.inner_text(".lbs-cluster-deals")
        assert_labels_legible(page)

        page.click(".lbs-near-me")
        wait_until(page, f"Math.abs({MAP}.lbsMap.getCenter().lng - {EAST[1]}) < 1e-3")
        wait_ready(page)
        assert {s.id for s in east} <= marker_ids(page)
        assert violations == []  # the widget and Leaflet run under /map's policy
        context.close()


def test_a_crowd_shows_whole_as_clusters_then_every_merchant_and_a_lone_one_as_itself(
    database_url: str, engine: Engine, browser: Browser, tmp_path: Path
) -> None:
    rows = [
        merchant(f"Crowd {k}", CENTRE[0] + 0.00005 * (k % 12), CENTRE[1] + 0.0001 * (k // 12))
        for k in range(130)
    ]
    rows.append(merchant("Lone", CENTRE[0], CENTRE[1] + 0.005, "bakery"))  # ~280 m east
    seeded = seed(engine, rows)
    add_deal(engine, seeded[0].id, "Tea -30 %")
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=1) as server:
        page = browser.new_page(viewport={"width": 1000, "height": 700}, locale="en-US")
        page.goto(f"{server.base_url}/map?lat={CENTRE[0]}&lon={CENTRE[1]}&radius=300")
        page.wait_for_selector(".lbs-cluster", timeout=15_000)
        wait_ready(page)

        # Zoom 16: more than a page in view, so clusters (a page chosen by id would be a
        # biased sample); the lone merchant, a cluster of one, is drawn as a merchant.
        assert page.evaluate(f"{MAP}.lbsMap.getZoom()") == 16
        assert marker_ids(page) == set()
        assert shown_total(page) == 131
        assert_labels_legible(page)
        page.click(".lbs-marker[data-cell]")
        wait_until(page, "document.querySelector('.lbs-popup') !== null")
        assert "Lone" in page.inner_text(".lbs-popup") and "bakery" in page.inner_text(".lbs-popup")
        # The map moves (a popup's autopan, a drag): the refresh keeps the open popup.
        page.evaluate(f"{MAP}.lbsMap.panBy([60, 0])")
        wait_until(page, f"{MAP}.dataset.lbsState === 'loading'")
        wait_ready(page)
        assert "Lone" in page.inner_text(".lbs-popup") and shown_total(page) == 131
        page.click(".leaflet-popup-close-button")

        # Zoom 17: every merchant in view, the API's pages of 100 walked to the end.
        zoom_to(page, 17)
        assert marker_ids(page) == {s.id for s in seeded}
        assert page.locator(".lbs-cluster").count() == 0
        assert_labels_legible(page)
        page.close()


def test_a_map_on_another_site_claims_on_the_servers_own_page(
    database_url: str, engine: Engine, browser: Browser, tmp_path: Path
) -> None:
    centre, _ = town(engine)
    add_deal(engine, centre[0].id, "Coffee -30 %")
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=1) as server:
        embedding = (
            "<!doctype html><html><body><div id='map' data-lbs-map data-api='" + server.base_url + "' "
            f"data-lat='{CENTRE[0]}' data-lon='{CENTRE[1]}' data-radius='120'></div>"
            f"<script src='{server.base_url}/widget.js'></script></body></html>"
        )
        page = browser.new_page(viewport={"width": 1000, "height": 700}, locale="en-US")
        with site_serving(embedding) as site:  # another origin (port), as a shop's own site
            page.goto(site)
        page.wait_for_selector(".lbs-marker", timeout=15_000)
        wait_ready(page)
        assert marker_ids(page) == {s.id for s in centre}
        page.click(f".lbs-marker[data-id='{centre[0].id}']")
        # Writes carry no CORS headers: the popup links to the server's /map instead.
        link = page.wait_for_selector(".lbs-popup a.lbs-claim").get_attribute("href")
        assert link is not None and link.startswith(f"{server.base_url}/map?")
        assert f"merchant={centre[0].id}" in link

        page.goto(link)
        wait_until(page, f"document.querySelector(\".lbs-popup[data-id='{centre[0].id}']\") !== null")
        page.click(".lbs-popup button.lbs-claim")
        assert VOUCHER_CODE.match(page.wait_for_selector(".lbs-voucher .lbs-code").inner_text())
        page.close()
