"""Insights as CSV: the JSON answer's rows (total, deals, buckets), one line each, same numbers."""

from __future__ import annotations

import csv
import io
from typing import Any

COLUMNS = (
    "row",
    "deal_id",
    "title",
    "key",
    "currency",
    "suppressed",
    "users",
    "impressions",
    "clicks",
    "claims",
    "redemptions",
    "reviews",
    "click_through",
    "claim_rate",
    "redemption_rate",
    "revenue_minor",
    "discount_minor",
    "roi",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""  # suppressed, or not known
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _line(kind: str, group: dict[str, Any], currency: str | None) -> list[str]:
    values = {**group, **group["conversion"], "row": kind, "currency": group.get("currency", currency)}
    return [_cell(values.get(column)) for column in COLUMNS]


def insights_csv(report: dict[str, Any]) -> str:
    """``report`` (lbs.services.insights.merchant_insights) as CSV: a header, the total, a line
    per deal, a line per bucket (its `key`); blanks for suppressed and unknown numbers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow(_line("total", report["total"], report["currency"]))
    for deal in report["deals"]:
        writer.writerow(_line("deal", deal, None))
    for bucket in report["buckets"]:
        writer.writerow(_line("bucket", bucket, report["currency"]))
    return out.getvalue()
