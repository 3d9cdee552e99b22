"""Merchants' settlement statements: what they are owed for prepaid vouchers, week by week."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, field_validator

from lbs.api.auth import MERCHANT, require_merchant
from lbs.api.context import db_session, utc_now
from lbs.api.payment_schemas import StatementListOut
from lbs.api.problems import register_model
from lbs.api.schemas import ERRORS, QueryModel
from lbs.payments import settlements
from lbs.payments.periods import WEEK, parse_period, period_name
from lbs.services import cursors
from lbs.services.cursors import Cursor

counter = APIBlueprint("settlements", __name__, url_prefix="/v1/merchant", abp_tags=[Tag(name="merchant")])


@counter.before_request
def _merchant_first() -> None:
    g.merchant_id = require_merchant()


def statement_view(statement: settlements.Statement) -> dict[str, Any]:
    now = utc_now()
    payout = statement.payout
    view: dict[str, Any] = {
        "period": period_name(statement.period_start),
        "period_start": statement.period_start.isoformat(),
        "period_end": (statement.period_start + WEEK).isoformat(),
        "currency": statement.currency,
        "status": statement.status(now),
        "vouchers": statement.vouchers,
        "gross_minor": statement.gross_minor,
        "commission_minor": statement.commission_minor,
        "net_minor": statement.net_minor,
        "paid_at": None if payout is None else payout.paid_at.isoformat(),
        "reference": None if payout is None else payout.reference,
    }
    if statement.lines is not None:
        view["lines"] = [
            {
                "voucher_id": line.voucher_id,
                "deal_id": line.deal_id,
                "deal_title": line.deal_title,
                "kind": "redeemed" if line.redeemed else "expired",
                "earned_at": line.earned_at.isoformat(),
                "price_minor": line.price_minor,
                "commission_minor": line.commission_minor,
                "net_minor": line.price_minor - line.commission_minor,
            }
            for line in statement.lines
        ]
    return view


@register_model
class StatementsQuery(QueryModel):
    limit: int = Field(12, ge=1, le=104, description="weeks per page")
    cursor: Cursor | None = None


@counter.get("/settlements", responses={200: StatementListOut, **ERRORS}, security=MERCHANT)
def list_statements(query: StatementsQuery) -> dict[str, Any]:
    """Merchant: its settlement statements, a week (UTC, Monday on) per currency, newest first;
    only weeks in which it earned something. Pages: pass next_cursor back as cursor."""
    before = None
    if query.cursor:
        before = settlements.from_epoch(cursors.decode_id(query.cursor, ["settlements"], ""))
    found = settlements.statements(db_session(), g.merchant_id, query.limit + 1, before)
    starts = sorted({s.period_start for s in found}, reverse=True)
    more = len(starts) > query.limit
    shown = [s for s in found if s.period_start in starts[: query.limit]]
    return {
        "items": [statement_view(s) for s in shown],
        "next_cursor": cursors.encode_id(["settlements"], int(starts[query.limit - 1].timestamp()))
        if more
        else None,
    }


@register_model
class PeriodPath(BaseModel):
    period: str = Field(description="an ISO week: 2026-W49", pattern=r"^\d{4}-W\d{2}$")

    @field_validator("period")
    @classmethod
    def _a_week(cls, period: str) -> str:
        try:
            parse_period(period)
        except ValueError:
            raise ValueError("expected an ISO week, YYYY-Www (2026-W49)") from None
        return period


@counter.get("/settlements/<period>", responses={200: StatementListOut, **ERRORS}, security=MERCHANT)
def get_statement(path: PeriodPath) -> dict[str, Any]:
    """Merchant: a week's statements (one per currency) with every voucher's line."""
    found = settlements.statement(db_session(), g.merchant_id, parse_period(path.period))
    return {"items": [statement_view(s) for s in found], "next_cursor": None}
