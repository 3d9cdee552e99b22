"""Pydantic models of GET /v1/merchant/insights: its query and what it answers (for the OpenAPI document)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from lbs.api.problems import register_model
from lbs.api.responses import Out
from lbs.api.schemas import QueryModel
from lbs.services.insights import DEFAULT_DAYS, MAX_DAYS
from lbs.text import WithPattern

_DATE = re.compile(r"^20\d\d-\d\d-\d\d$")


def _local_date(value: object) -> object:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("expected a local date YYYY-MM-DD, years 2000-2099")
    return value


LocalDate = Annotated[date, BeforeValidator(_local_date), WithPattern(_DATE.pattern)]
BY = "day | hour | weekday | area | source"


class InsightsRange(QueryModel):
    """The dates and deal an answer of the insights covers (the JSON, the CSV, the charts)."""

    model_config = ConfigDict(extra="forbid")

    from_: LocalDate | None = Field(
        None,
        alias="from",
        description=f"first local date (the merchant's zone), inclusive; "
        f"default: {DEFAULT_DAYS} days up to `to`",
    )
    to: LocalDate | None = Field(
        None, description=f"last local date, inclusive (default today); at most {MAX_DAYS} days from `from`"
    )
    deal_id: int | None = Field(
        None, ge=1, le=2**63 - 1, description="only this deal (one of the merchant's)"
    )


@register_model
class InsightsParams(InsightsRange):
    by: Literal["day", "hour", "weekday", "area", "source"] = Field(
        "day",
        description="the buckets: local day, local hour (0-23), weekday, area (H3 res-7 cell where "
        "users stood when they saw the deal) or source (where they saw it: nearby, map, deal_page, "
        "merchant_page; claims and redemptions by their last touch)",
    )
    uplift: bool = Field(
        False,
        description="also the observational uplift of each deal listed (about 30-40 ms a deal "
        "on PostgreSQL: it reads the raw redemptions and visits)",
    )


@register_model
class ChartParams(InsightsRange):
    kind: Literal["funnel", "by_hour"] = Field(
        description="funnel: the total's four steps and their conversion; by_hour: `measure` per local hour"
    )
    measure: Literal["impressions", "clicks", "claims", "redemptions"] = Field(
        "impressions", description="what kind=by_hour counts (ignored by the funnel)"
    )


class ConversionOut(Out):
    click_through: float | None = Field(description="clicks / impressions")
    claim_rate: float | None = Field(description="claims / clicks")
    redemption_rate: float | None = Field(description="redemptions / claims")


class MetricsOut(Out):
    """A group's funnel; every number null when suppressed (fewer than k distinct users, or
    hidden so that no such group can be worked out from the others: docs/insights.md)."""

    suppressed: bool
    users: int | None = Field(description="distinct users with an impression, click, claim or redemption")
    impressions: int | None = Field(description="unique user-days: a user shown it on a day counts once")
    clicks: int | None
    claims: int | None
    redemptions: int | None
    reviews: int | None = Field(description="null in hour, area and source buckets")
    conversion: ConversionOut
    revenue_minor: int | None = Field(description="what the redeemed vouchers sold for, minor units")
    discount_minor: int | None = Field(description="(list price - voucher price) x redemptions")
    roi: float | None = Field(description="(revenue - discount) / discount")


class DealInsightOut(MetricsOut):
    deal_id: int
    title: str
    currency: str


class BucketOut(MetricsOut):
    key: str = Field(description="2026-11-03 | 18 | mon | an H3 res-7 cell | nearby; 'unknown': not known")


class UpliftPeriodOut(Out):
    redemptions: int
    visits: int
    redemptions_per_week: float | None
    visits_per_week: float | None


class UpliftDifferenceOut(Out):
    redemptions_per_week: float
    visits_per_week: float


class UpliftOut(Out):
    """Redemptions (any deal's) and visits in the deal's hours during it, against the same
    hours in the weeks before it started. Observational: not a controlled experiment."""

    deal_id: int
    observational: Literal[True]
    suppressed: bool
    weeks_during: float
    weeks_before: int
    during: UpliftPeriodOut | None
    before: UpliftPeriodOut | None
    difference: UpliftDifferenceOut | None


class InsightsOut(Out):
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    merchant_id: int
    from_: str = Field(alias="from", description="first local date, inclusive")
    to: str = Field(description="last local date, inclusive")
    timezone: str
    by: str
    k: int = Field(description="groups seen by fewer distinct users are suppressed")
    currency: str | None = Field(
        description="the deals' one currency; null when they have several (no money in total or buckets)"
    )
    total: MetricsOut
    deals: list[DealInsightOut]
    buckets: list[BucketOut]
    uplift: list[UpliftOut]
