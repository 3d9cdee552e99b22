"""Deals: merchants manage their own (/v1/merchant/deals), anyone reads published ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import g
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field

from lbs.api.auth import MERCHANT, OPTIONAL_USER, optional_user, require_merchant
from lbs.api.context import db_session, runtime, utc_now
from lbs.api.problems import register_model
from lbs.api.schemas import CONFLICTS, ERRORS, DealListOut, DealOut, DealPath, MerchantPath, QueryModel
from lbs.models import Deal
from lbs.services import deals, events
from lbs.services.deal_offers import deal_view, merchant_offers, public_deal
from lbs.services.deal_schedule import Instant
from lbs.services.merchants import get_merchant

desk = APIBlueprint("merchant_deals", __name__, url_prefix="/v1/merchant", abp_tags=[Tag(name="merchant")])
public = APIBlueprint("deals", __name__, url_prefix="/v1", abp_tags=[Tag(name="deals")])

register_model(deals.DealFields)
register_model(deals.DealChanges)


@desk.before_request
def _merchant_first() -> None:
    # Every merchant-desk call: credentials are checked before any body is looked at.
    g.merchant_id = require_merchant()


@register_model
class ActionPath(DealPath):
    action: Literal["publish", "pause", "resume", "end"]


@register_model
class AtQuery(QueryModel):
    at: Instant | None = Field(None, description="ISO 8601 with offset: evaluate as of this time")


def _at(query: AtQuery) -> datetime:
    return query.at or utc_now()


def _takes_payments() -> bool:
    return runtime().payments is not None


def _own_view(deal: Deal, at: datetime) -> dict[str, Any]:
    return deal_view(deals.as_owner_sees(db_session(), g.merchant_id, [deal], at)[0])


@desk.post("/deals", responses={201: DealOut, **ERRORS}, security=MERCHANT)
def create_deal(body: deals.DealFields) -> tuple[dict[str, Any], int]:
    """Merchant: create a deal (a draft unless publish is true)."""
    now = utc_now()
    return _own_view(
        deals.create_deal(db_session(), g.merchant_id, body, now, takes_payments=_takes_payments()), now
    ), 201


@desk.get("/deals", responses={200: DealListOut, **ERRORS}, security=MERCHANT)
def list_own_deals(query: AtQuery) -> dict[str, Any]:
    """Merchant: all its deals, any state, oldest first."""
    session = db_session()
    own = deals.as_owner_sees(session, g.merchant_id, deals.own_deals(session, g.merchant_id), _at(query))
    return {"items": [deal_view(offer) for offer in own]}


@desk.get("/deals/<int:deal_id>", responses={200: DealOut, **ERRORS}, security=MERCHANT)
def get_own_deal(path: DealPath, query: AtQuery) -> dict[str, Any]:
    """Merchant: one of its deals."""
    return _own_view(deals.own_deal(db_session(), g.merchant_id, path.deal_id), _at(query))


@desk.patch("/deals/<int:deal_id>", responses={200: DealOut, **ERRORS, **CONFLICTS}, security=MERCHANT)
def update_deal(path: DealPath, body: deals.DealChanges) -> dict[str, Any]:
    """Merchant: change fields; once claimed, only the safe ones (docs/deals.md)."""
    now = utc_now()
    return _own_view(
        deals.update_deal(
            db_session(), g.merchant_id, path.deal_id, body, now, takes_payments=_takes_payments()
        ),
        now,
    )


@desk.post(
    "/deals/<int:deal_id>/<action>", responses={200: DealOut, **ERRORS, **CONFLICTS}, security=MERCHANT
)
def change_status(path: ActionPath) -> dict[str, Any]:
    """Merchant: publish, pause, resume or end a deal."""
    now = utc_now()
    return _own_view(deals.change_status(db_session(), g.merchant_id, path.deal_id, path.action, now), now)


@public.get("/deals/<int:deal_id>", responses={200: DealOut, **ERRORS}, security=OPTIONAL_USER)
def get_deal(path: DealPath, query: AtQuery) -> dict[str, Any]:
    """Anyone: a published deal with its state and window at `at` (default now)."""
    user_id = optional_user()
    offer = public_deal(db_session(), path.deal_id, _at(query))
    if user_id is not None:
        g.pending_events = [events.click(user_id, utc_now(), offer.deal.merchant_id, offer.deal.id)]
    return deal_view(offer)


@public.get("/merchants/<int:merchant_id>/deals", responses={200: DealListOut, **ERRORS})
def list_merchant_deals(path: MerchantPath, query: AtQuery) -> dict[str, Any]:
    """Anyone: a merchant's published deals not over at `at`, claimable ones first."""
    get_merchant(db_session(), path.merchant_id)
    return {"items": [deal_view(o) for o in merchant_offers(db_session(), path.merchant_id, _at(query))]}
