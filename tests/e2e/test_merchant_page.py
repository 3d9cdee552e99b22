"""The merchant page in real headless Chromium at phone size (360 x 740) against a live gunicorn.

A shop whose deals people saw, opened, claimed and redeemed through the API: its merchant
pastes the key and sees the funnel and by-hour charts drawing the numbers the JSON gives
(read back from the inline SVG), the table per deal with the hand-counted numbers and a
suppressed deal said hidden, downloads the very CSV the API gives, and reads and answers
its reviews. The key stays in the tab (sessionStorage), never in a URL; nothing is wider
than the phone but the table's own scrolling box; no chart label overlaps another; the
page runs under its Content-Security-Policy without a violation.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, Request

from tests.conftest import OPERATOR_TOKEN, OPERATOR_TOKEN_SHA256
from tests.deals_factory import deal_payload
from tests.e2e.server import gunicorn
from tests.e2e.test_widget import ARTIFACTS, browser, csp_violations  # noqa: F401 (a fixture)

pytestmark = pytest.mark.gunicorn

SPOT = (60.1699, 24.9384)
PHONE = {"width": 360, "height": 740}
HIDDEN_ROW = "hidden (< 5 people)"
FUNNEL = ("impressions", "clicks", "claims", "redemptions")
_keys = itertools.count()


@dataclass(frozen=True)
class Shop:
    merchant_id: int
    key: str
    coffee: int  # 8 people opened it, 6 claimed, 5 redeemed: a visible row
    tea: int  # 6 people claimed it: visible alone, hidden beside rare
    rare: int  # 2 people: too few to show
    vouchers: dict[str, list[tuple[str, int]]]  # user token -> (deal title, voucher id) redeemed


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def send(method: str, url: str, token: str | None = None, **kwargs: Any) -> Any:
    response = requests.request(method, url, headers=bearer(token) if token else {}, timeout=30, **kwargs)
    assert response.ok, f"{method} {url}: {response.status_code} {response.text[:300]}"
    return response.json()


def shop_with_customers(base: str) -> Shop:
    """Through the API, as people would: nearby (impressions), the deal's page (clicks),
    claims and redemptions at the counter."""
    operator = OPERATOR_TOKEN
    place = {"name": "Kahvila <Testi> & Co", "category": "cafe", "lat": SPOT[0], "lon": SPOT[1]}
    shop = send("POST", f"{base}/v1/merchants", operator, json=place)
    key = send("POST", f"{base}/v1/merchants/{shop['id']}/api-keys", operator)["api_key"]
    prices = {"list_price_minor": 500, "deal_price_minor": 350, "publish": True}
    deals = {
        title: send("POST", f"{base}/v1/merchant/deals", key, json=deal_payload(title=title, **prices))["id"]
        for title in ("Coffee & bun <b>-30 %</b>", "Tea for two", "Rare cake")
    }
    coffee, tea, rare = deals.values()
    people = [send("POST", f"{base}/v1/users")["token"] for _ in range(10)]
    redeemed: dict[str, list[tuple[str, int]]] = {}

    def claim_and_redeem(token: str, deal_id: int, title: str, redeem: bool) -> None:
        headers = {**bearer(token), "Idempotency-Key": f"claim-{next(_keys)}"}
        claimed = requests.post(f"{base}/v1/deals/{deal_id}/claim", headers=headers, timeout=30)
        assert claimed.status_code == 201, claimed.text
        if redeem:
            code = claimed.json()["code"]
            voucher = send("POST", f"{base}/v1/merchant/vouchers/redeem", key, json={"code": code})
            redeemed.setdefault(token, []).append((title, voucher["id"]))

    def search_until_shown(token: str) -> None:
        """Nearby until the shop is on the page: a worker's index learns of a new merchant
        within LBS_INDEX_REFRESH_S, and a page without the shop logs no impression of it."""
        url = f"{base}/v1/nearby?lat={SPOT[0]}&lon={SPOT[1]}&radius_m=300"
        deadline = time.monotonic() + 30
        while shop["id"] not in [item["merchant"]["id"] for item in send("GET", url, token)["items"]]:
            assert time.monotonic() < deadline, "the new shop was not in nearby within 30 s"
            time.sleep(0.2)

    for n, token in enumerate(people[:8]):
        search_until_shown(token)
        send("GET", f"{base}/v1/deals/{coffee}", token)
        if n < 6:
            claim_and_redeem(token, coffee, "Coffee & bun <b>-30 %</b>", redeem=n < 5)
            claim_and_redeem(token, tea, "Tea for two", redeem=False)
    for token in people[8:]:
        claim_and_redeem(token, rare, "Rare cake", redeem=False)
    # The reads' impressions and clicks reach the log through each worker's event buffer
    # (LBS_EVENT_FLUSH_S, 1 s): wait for all of them, or the page and the JSON read after it
    # may each see a different share (CI, under load).
    deadline = time.monotonic() + 30
    while (funnel := insights(base, key)["total"])["impressions"] != 8 or funnel["clicks"] != 8:
        assert time.monotonic() < deadline, f"the 8 people's reads were not logged within 30 s: {funnel}"
        time.sleep(0.2)
    return Shop(shop["id"], key, coffee, tea, rare, redeemed)


def insights(base: str, key: str, **params: str) -> dict[str, Any]:
    response = requests.get(f"{base}/v1/merchant/insights", params=params, headers=bearer(key), timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def chart_numbers(page: Page, chart: str) -> dict[str, Any]:
    """What the inline chart says, read from its SVG as a screen reader or a test would."""
    return dict(
        page.evaluate(
            """(chart) => {
            const svg = document.querySelector(chart + " svg");
            const texts = (cls) => [...svg.querySelectorAll("text." + cls)].map((t) => t.textContent);
            return {ns: svg.namespaceURI, label: svg.getAttribute("aria-label"),
                    steps: texts("step"), counts: texts("count"), hours: texts("hour"),
                    hidden: texts("hidden-note").length,
                    width: svg.getBoundingClientRect().width};
        }""",
            chart,
        )
    )


def overlapping_labels(page: Page, chart: str) -> list[str]:
    """Pairs of the chart's texts whose drawn boxes intersect, and texts outside the chart."""
    return list(
        page.evaluate(
            """(chart) => {
            const svg = document.querySelector(chart + " svg");
            const outer = svg.getBoundingClientRect();
            const boxes = [...svg.querySelectorAll("text")]
                .map((t) => [t.textContent, t.getBoundingClientRect()]);
            const found = [];
            for (const [text, box] of boxes) {
                const out = box.left < outer.left - 0.5 || box.right > outer.right + 0.5;
                if (out) found.push("outside: " + text);
            }
            boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
                if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom) {
                    found.push(a + " / " + b);
                }
            }));
            return found;
        }""",
            chart,
        )
    )


def assert_hours_drawn(page: Page, report: dict[str, Any], measure: str) -> None:
    """The by-hour chart draws the report's hourly buckets: hidden ones as hidden, absent ones 0."""
    hours = chart_numbers(page, "#hour-chart")
    by_hour = {int(b["key"]): b[measure] for b in report["buckets"] if b["key"].isdigit()}
    expected = [by_hour.get(hour, 0) for hour in range(24)]
    assert hours["hours"] == [f"{h:02d}:00" for h in range(24)]
    assert [number(c) for c in hours["counts"]] == [v for v in expected if v is not None]
    assert hours["hidden"] == expected.count(None)
    assert sum(v or 0 for v in expected) > 0 or measure == "redemptions"


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_a_merchant_sees_its_funnel_hours_deals_and_csv_on_a_phone(
    database_url: str, browser: Browser, tmp_path: Path  # noqa: F811
) -> None:
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=2) as server:
        base = server.base_url
        shop = shop_with_customers(base)
        context = browser.new_context(viewport=PHONE, locale="en-US", accept_downloads=True)
        page = context.new_page()
        violations = csp_violations(page)
        requests_made: list[Request] = []
        page.on("request", lambda r: requests_made.append(r))

        page.goto(f"{base}/merchant")
        assert page.get_attribute("#merchant-page", "data-state") == "locked"
        assert page.is_hidden("#dashboard")
        page.fill("#api-key", shop.key)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#merchant-page[data-state=ready]", timeout=20_000)

        # What the JSON says, for the same (default) range, is what the page shows.
        report = insights(base, shop.key, by="hour")
        assert page.input_value("#from") == report["from"] and page.input_value("#to") == report["to"]
        assert page.inner_text("#shop-name") == "Kahvila <Testi> & Co"

        funnel = chart_numbers(page, "#funnel-chart")
        assert funnel["ns"] == "http://www.w3.org/2000/svg" and funnel["width"] <= PHONE["width"]
        assert funnel["steps"] == ["Impressions", "Clicks", "Claims", "Redemptions"]
        total = report["total"]
        assert not total["suppressed"] and [total[f] for f in FUNNEL][1:] == [8, 14, 5]  # hand-counted
        assert [number(c) for c in funnel["counts"]] == [total[f] for f in FUNNEL]
        assert "Clicks: 8" in funnel["label"] and "Redemptions: 5" in funnel["label"]

        assert_hours_drawn(page, report, "impressions")
        for chart in ("#funnel-chart", "#hour-chart"):
            assert overlapping_labels(page, chart) == [], chart
        page.select_option("#hour-measure", "claims")
        page.wait_for_selector("#hour-chart svg[aria-label^='Claims by hour']")
        assert_hours_drawn(page, report, "claims")

        # The table: one row per deal, the hidden ones said hidden, the total below.
        rows = {r["deal_id"]: r for r in report["deals"]}
        coffee = page.locator(f"#deal-table tbody tr[data-deal-id='{shop.coffee}']")
        assert coffee.locator("th").inner_text() == "Coffee & bun <b>-30 %</b>"
        cells = {f: coffee.locator(f"td[data-field={f}]").inner_text() for f in FUNNEL[1:]}
        assert cells == {"clicks": "8", "claims": "6", "redemptions": "5"}
        assert coffee.locator("td[data-field=revenue_minor]").inner_text() == "€17.50"  # 5 x €3.50
        assert coffee.locator("td[data-field=discount_minor]").inner_text() == "€7.50"  # 5 x €1.50
        assert not rows[shop.coffee]["suppressed"] and rows[shop.rare]["suppressed"]
        for deal_id, row in rows.items():
            shown = page.inner_text(f"#deal-table tbody tr[data-deal-id='{deal_id}']")
            assert (HIDDEN_ROW in shown) == row["suppressed"], (deal_id, shown)
        assert page.inner_text("#total-row td[data-field=claims]") == "14"

        # A deal chosen: its numbers alone.
        page.select_option("#deal", str(shop.coffee))
        page.click("#range-form button[type=submit]")
        page.wait_for_selector("#merchant-page[data-state=ready]")
        alone = insights(base, shop.key, by="hour", deal_id=str(shop.coffee))
        counts = [number(c) for c in chart_numbers(page, "#funnel-chart")["counts"]]
        assert counts == [alone["total"][f] for f in FUNNEL] and counts[1:] == [8, 6, 5]

        # The CSV download is the API's CSV for the same query, by day.
        with page.expect_download() as download:
            page.click("#csv-link")
        saved = Path(download.value.path()).read_bytes()
        expected = requests.get(
            f"{base}/v1/merchant/insights.csv",
            params={"from": alone["from"], "to": alone["to"], "deal_id": shop.coffee, "by": "day"},
            headers=bearer(shop.key),
            timeout=30,
        )
        assert saved == expected.content and "Coffee & bun" in saved.decode()
        assert download.value.suggested_filename.endswith(".csv")

        layout_width = page.evaluate("document.documentElement.scrollWidth")
        assert layout_width <= PHONE["width"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"merchant-page-{Path(database_url).name[:40]}.png"
        page.screenshot(path=str(shot), full_page=True)

        # The key: in this tab's sessionStorage, in headers, never in a URL or localStorage.
        assert page.evaluate("sessionStorage.getItem('lbs.merchantKey')") == shop.key
        assert page.evaluate("localStorage.length") == 0
        assert all(shop.key not in r.url for r in requests_made)
        with_key = [r for r in requests_made if r.headers.get("authorization") == f"Bearer {shop.key}"]
        assert {r.url.split("?")[0].removeprefix(base) for r in with_key} >= {
            "/v1/merchants/me", "/v1/merchant/insights", "/v1/merchant/insights/chart.svg",
            "/v1/merchant/insights.csv",
        }  # fmt: skip
        page.reload()  # the same tab keeps it
        page.wait_for_selector("#merchant-page[data-state=ready]", timeout=20_000)
        page.click("#forget-key")
        assert page.get_attribute("#merchant-page", "data-state") == "locked"
        assert page.evaluate("sessionStorage.getItem('lbs.merchantKey')") is None
        other_tab = context.new_page()
        other_tab.goto(f"{base}/merchant")
        assert other_tab.get_attribute("#merchant-page", "data-state") == "locked"

        # A key that is not one: said, and not kept.
        page.fill("#api-key", "lbs_mk_" + "x" * 43)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#merchant-page[data-state=locked] #status.problem")
        assert "not accepted" in page.inner_text("#status")
        assert page.evaluate("sessionStorage.getItem('lbs.merchantKey')") is None
        assert violations == []
        context.close()


def test_a_merchant_reads_and_answers_its_reviews(
    database_url: str, browser: Browser, tmp_path: Path  # noqa: F811
) -> None:
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=2) as server:
        base = server.base_url
        shop = shop_with_customers(base)
        (happy, [(title, first)]), (unsure, [(_, second)]) = list(shop.vouchers.items())[:2]
        send("POST", f"{base}/v1/me/reviews", happy,
             json={"voucher_id": first, "rating": 5, "text": "Great <b>coffee</b> & bun"})  # fmt: skip
        send("POST", f"{base}/v1/me/reviews", unsure,
             json={"voucher_id": second, "rating": 3, "text": "Fine.\nSlow at noon"})  # fmt: skip
        page = browser.new_page(viewport=PHONE, locale="en-US")
        violations = csp_violations(page)
        page.goto(f"{base}/merchant")
        page.fill("#api-key", shop.key)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#reviews[data-state=ready]", timeout=20_000)

        public = send("GET", f"{base}/v1/merchants/{shop.merchant_id}/reviews?sort=newest")
        assert [r["rating"] for r in public["items"]] == [3, 5]  # newest first
        items = page.locator("#reviews li.review")
        assert items.count() == 2
        newest, oldest = items.nth(0), items.nth(1)
        assert newest.locator(".stars").get_attribute("aria-label") == "3 out of 5 stars"
        assert newest.locator(".review-text").inner_text() == "Fine.\nSlow at noon"
        assert oldest.locator(".review-text").inner_text() == "Great <b>coffee</b> & bun"  # text, not markup
        assert oldest.locator(".verified").inner_text() == public["items"][1]["verified_text"]
        assert public["items"][1]["verified_text"].startswith(f"verified: redeemed {title} on ")
        assert page.inner_text("#rating").startswith(f"{public['rating']['average']:.1f} ★ from 2 reviews")

        # A reply, once: the box gives way to the reply, which everyone reads from the API.
        review_id = public["items"][1]["id"]
        page.fill(f"#reply-{review_id}", "Thank you! <i>See you soon</i>")
        page.click(f"li[data-id='{review_id}'] .reply-form button")
        reply = page.wait_for_selector(f"li[data-id='{review_id}'] .reply").inner_text()
        assert reply == "Your reply: Thank you! <i>See you soon</i>"
        assert page.locator(f"li[data-id='{review_id}'] .reply-form").count() == 0
        again = send("GET", f"{base}/v1/merchants/{shop.merchant_id}/reviews?sort=newest")
        assert again["items"][1]["reply"]["text"] == "Thank you! <i>See you soon</i>"
        assert again["items"][0]["reply"] is None
        page.reload()
        page.wait_for_selector("#reviews[data-state=ready]", timeout=20_000)
        assert page.locator(f"li[data-id='{review_id}'] .reply-form").count() == 0
        assert page.locator("li.review .reply-form").count() == 1
        assert violations == []
        page.close()
