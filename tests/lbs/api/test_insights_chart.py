"""GET /v1/merchant/insights/chart.svg through HTTP on both databases: the chart draws the
numbers the JSON gives for the same query (read back from the SVG), hidden ones as hidden;
bad queries are problems naming the field; a merchant charts only its own deals."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from flask.testing import FlaskClient

from lbs.insights_charts import HIDDEN
from tests.deals_factory import bearer, create_deal, make_merchant
from tests.lbs.api.test_insights import Scenario, insights, scenario  # noqa: F401 (a fixture)
from tests.problems import assert_problem

NS = "{http://www.w3.org/2000/svg}"
FUNNEL = ("impressions", "clicks", "claims", "redemptions")


def chart(client: FlaskClient, key: str, **query: Any) -> ET.Element:
    response = client.get("/v1/merchant/insights/chart.svg", query_string=query, headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'"
    assert response.headers["Cache-Control"] == "no-store"
    return ET.fromstring(response.get_data(as_text=True))


def texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text") if t.get("class") == cls]


def counts(root: ET.Element) -> list[int]:
    return [int(t.replace(",", "")) for t in texts(root, "count")]


def test_the_funnel_draws_the_totals_numbers(client: FlaskClient, scenario: Scenario) -> None:  # noqa: F811
    report = insights(client, scenario.key)
    root = chart(client, scenario.key, kind="funnel")

    assert not report["total"]["suppressed"]
    assert counts(root) == [report["total"][f] for f in FUNNEL]
    assert texts(root, "step") == ["Impressions", "Clicks", "Claims", "Redemptions"]
    assert root.findtext(f"{NS}title") == f"All deals · {report['from']} to {report['to']}"


def test_dates_and_a_deal_choose_what_is_drawn(client: FlaskClient, scenario: Scenario) -> None:  # noqa: F811
    query = {"from": scenario.day_b, "to": scenario.today, "deal_id": scenario.d1}
    report = insights(client, scenario.key, **query)
    root = chart(client, scenario.key, kind="funnel", **query)

    assert counts(root) == [report["total"][f] for f in FUNNEL]
    assert root.findtext(f"{NS}title") == f"Ramen · {scenario.day_b} to {scenario.today}"
    assert counts(root) != counts(chart(client, scenario.key, kind="funnel"))  # day_a is left out


@pytest.mark.parametrize("measure", [*FUNNEL, None])
def test_by_hour_draws_the_hourly_buckets_hidden_ones_hidden(
    client: FlaskClient, scenario: Scenario, measure: str | None  # noqa: F811
) -> None:
    report = insights(client, scenario.key, by="hour")
    query = {"kind": "by_hour"} | ({"measure": measure} if measure else {})
    root = chart(client, scenario.key, **query)

    drawn = measure or "impressions"  # the default
    by_hour = {int(b["key"]): b[drawn] for b in report["buckets"] if b["key"].isdigit()}
    expected = [by_hour.get(hour, 0) for hour in range(24)]
    assert counts(root) == [v for v in expected if v is not None]
    assert by_hour[int(scenario.hour_c)] is None  # one user alone that hour
    assert texts(root, "hidden-note") == [HIDDEN] * expected.count(None)
    assert (root.findtext(f"{NS}title") or "").startswith(f"{drawn.capitalize()} by hour · All deals")


def test_a_merchant_without_events_gets_zeros_not_an_error(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    funnel = chart(client, key, kind="funnel")
    hours = chart(client, key, kind="by_hour")

    # Nobody at all hides nobody: zeros, drawn as zeros (1 to 4 people would be hidden).
    assert counts(funnel) == [0, 0, 0, 0] and texts(funnel, "hidden-note") == []
    assert counts(hours) == [0] * 24 and texts(hours, "rate") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "kind"),
        ({"kind": "pie"}, "kind"),
        ({"kind": "by_hour", "measure": "revenue"}, "measure"),
        ({"kind": "funnel", "by": "day"}, "by"),
        ({"kind": "funnel", "from": "2026-13-01"}, "from"),
        ({"kind": "funnel", "deal_id": "0"}, "deal_id"),
    ],
)
def test_bad_queries_are_problems_naming_the_field(
    client: FlaskClient, scenario: Scenario, query: dict[str, str], field: str  # noqa: F811
) -> None:
    response = client.get("/v1/merchant/insights/chart.svg", query_string=query, headers=bearer(scenario.key))

    assert_problem(response, 400, field)


def test_only_the_merchants_own_deals(client: FlaskClient, scenario: Scenario) -> None:  # noqa: F811
    _, other_key = make_merchant(client)
    theirs = create_deal(client, other_key, publish=True)["id"]
    path = "/v1/merchant/insights/chart.svg"

    assert client.get(path, query_string={"kind": "funnel"}).status_code == 401
    mine = client.get(path, query_string={"kind": "funnel", "deal_id": theirs}, headers=bearer(scenario.key))
    assert_problem(mine, 404)
