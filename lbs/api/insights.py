"""Merchants' insights: GET /v1/merchant/insights (JSON), .csv and its charts (chart.svg)."""

from __future__ import annotations

from typing import Any

from flask import Response, g
from flask_openapi3 import APIBlueprint, Tag

from lbs.api.auth import MERCHANT, require_merchant
from lbs.api.context import db_session, utc_now
from lbs.api.insight_schemas import ChartParams, InsightsOut, InsightsParams
from lbs.api.responses import Media
from lbs.api.schemas import ERRORS
from lbs.insights_charts import report_chart
from lbs.services.insights import InsightsQuery, merchant_insights
from lbs.services.insights_csv import insights_csv

desk = APIBlueprint("insights", __name__, url_prefix="/v1/merchant", abp_tags=[Tag(name="merchant")])
CSV = "text/csv"
SVG = "image/svg+xml"


@desk.before_request
def _merchant_first() -> None:
    g.merchant_id = require_merchant()


def _report(query: InsightsParams) -> dict[str, Any]:
    wanted = InsightsQuery(
        first=query.from_, last=query.to, deal_id=query.deal_id, by=query.by, uplift=query.uplift
    )
    return merchant_insights(db_session(), g.merchant_id, wanted, utc_now())


@desk.get("/insights", responses={200: InsightsOut, **ERRORS}, security=MERCHANT)
def insights(query: InsightsParams) -> dict[str, Any]:
    """Merchant: its funnel (impressions, clicks, claims, redemptions, money) in total, per
    deal and per bucket, over local dates; groups of fewer than k users suppressed, and an
    observational uplift per deal (docs/insights.md)."""
    return _report(query)


@desk.get(
    "/insights.csv",
    responses={200: Media("The same numbers, a line per total, deal and bucket", {CSV: None}), **ERRORS},
    security=MERCHANT,
)
def insights_as_csv(query: InsightsParams) -> Response:
    """Merchant: GET /v1/merchant/insights as CSV (blank: suppressed); uplift left out."""
    report = _report(query)
    name = f"insights-{report['merchant_id']}-{report['from']}-{report['to']}-{report['by']}.csv"
    return Response(
        insights_csv(report),
        mimetype=CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@desk.get(
    "/insights/chart.svg",
    responses={200: Media("The chart as SVG, drawn for a phone and scaled up", {SVG: None}), **ERRORS},
    security=MERCHANT,
)
def insights_chart(query: ChartParams) -> Response:
    """Merchant: GET /v1/merchant/insights as a chart, for the same dates and deal: kind=funnel
    (the total's four steps and their conversion) or kind=by_hour (`measure` per local hour).
    Suppressed numbers are drawn as hidden, never as 0 (docs/insights.md)."""
    wanted = InsightsQuery(first=query.from_, last=query.to, deal_id=query.deal_id, by="hour")
    report = merchant_insights(db_session(), g.merchant_id, wanted, utc_now())
    svg = report_chart(report, query.kind, query.measure, query.deal_id)
    # Opened on its own it is a document: it may run nothing and load nothing.
    return Response(svg, mimetype=SVG, headers={"Content-Security-Policy": "default-src 'none'"})
