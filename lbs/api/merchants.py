"""Merchants: public reads, operator creation and keys, owners' reads and updates."""

from __future__ import annotations

from typing import Annotated, Any

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import ConfigDict, Field

from lbs.api.auth import (
    MERCHANT,
    OPERATOR,
    OPTIONAL_USER,
    OWNER,
    authenticate,
    caller_is_operator,
    optional_user,
    require_merchant,
    require_operator,
)
from lbs.api.context import db_session, runtime, utc_now
from lbs.api.fields import MERCHANT_READ, FieldsOf, chosen
from lbs.api.problems import register_model
from lbs.api.schemas import ERRORS, MerchantOut, MerchantPath, MerchantReadOut, QueryModel
from lbs.services import events, merchants
from lbs.services.deal_schedule import Instant
from lbs.services.merchant_reads import merchant_read

bp = APIBlueprint("merchants", __name__, url_prefix="/v1", abp_tags=[Tag(name="merchants")])

register_model(merchants.MerchantFields)
register_model(merchants.MerchantChanges)


@bp.before_request
def _credentials_first() -> None:
    # Writes: missing or unknown credentials are a 401 before any body is looked at;
    # who may touch which merchant is decided in the view.
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        authenticate()


@register_model
class MerchantReadQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    fields: Annotated[list[str] | None, FieldsOf(MERCHANT_READ, "every field")] = None
    at: Instant | None = Field(
        None, description="ISO 8601 with offset: open_now and the week of hours as of then (default now)"
    )


def _read(merchant: dict[str, Any], query: MerchantReadQuery) -> dict[str, Any]:
    """The merchant with its rating, its hours at `at` and that week's hours, trimmed to `fields`."""
    rating = runtime().live_index.rating(db_session(), merchant["id"])
    return merchant_read(
        {**merchant, "rating": rating}, chosen(query.fields, MERCHANT_READ), query.at or utc_now()
    )


@bp.get("/merchants/<int:merchant_id>", responses={200: MerchantReadOut, **ERRORS}, security=OPTIONAL_USER)
def get_merchant(path: MerchantPath, query: MerchantReadQuery) -> dict[str, Any]:
    """Public: one merchant, with its opening hours now (or at `at`) and over that week.

    With a user token, the view is logged as a click."""
    user_id = optional_user()
    merchant = merchants.merchant_public(merchants.get_merchant(db_session(), path.merchant_id))
    if user_id is not None:
        g.pending_events = [events.click(user_id, utc_now(), path.merchant_id)]
    return _read(merchant, query)


@bp.post("/merchants", responses={201: MerchantOut, **ERRORS}, security=OPERATOR)
def create_merchant(body: merchants.MerchantFields) -> tuple[dict[str, Any], int]:
    """Operator: create a merchant."""
    require_operator()
    merchant = merchants.create_merchant(db_session(), body, utc_now())
    return merchants.merchant_public(merchant), 201


@bp.get("/merchants/me", responses={200: MerchantReadOut, **ERRORS}, security=MERCHANT)
def get_own_merchant(query: MerchantReadQuery) -> dict[str, Any]:
    """Merchant: the record the API key belongs to, with its hours as GET /v1/merchants/{id}."""
    return _read(merchants.merchant_public(merchants.get_merchant(db_session(), require_merchant())), query)


@bp.patch("/merchants/<int:merchant_id>", responses={200: MerchantOut, **ERRORS}, security=OWNER)
def update_merchant(path: MerchantPath, body: merchants.MerchantChanges) -> dict[str, Any]:
    """Merchant (own record only) or operator: change some fields."""
    require_merchant(path.merchant_id)
    merchant = merchants.update_merchant(
        db_session(), path.merchant_id, body, utc_now(), by_operator=caller_is_operator()
    )
    return merchants.merchant_public(merchant)
