"""POST /v1/events: what a user's client saw happen (impressions, clicks, visits)."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field

from lbs.api.auth import MERCHANT, USER, require_merchant, require_user
from lbs.api.context import db_session, utc_now
from lbs.api.problems import register_model
from lbs.api.schemas import ERRORS, EventFeedOut, EventsOut, QueryModel
from lbs.services import events

bp = APIBlueprint("events", __name__, url_prefix="/v1", abp_tags=[Tag(name="events")])

register_model(events.ClientEvents)


feed = APIBlueprint("event_feed", __name__, url_prefix="/v1/merchant", abp_tags=[Tag(name="merchant")])


@bp.before_request
def _user_first() -> None:
    # Credentials are checked before the body is looked at.
    g.user_id = require_user()


@feed.before_request
def _merchant_first() -> None:
    g.merchant_id = require_merchant()


@bp.post("/events", responses={200: EventsOut, **ERRORS}, security=USER)
def post_events(body: events.ClientEvents) -> dict[str, Any]:
    """User: client-side events; resent ids are counted as duplicates, not stored twice."""
    accepted, duplicates = events.ingest_client_events(db_session(), g.user_id, body.events, utc_now())
    return {"accepted": accepted, "duplicates": duplicates}


@register_model
class FeedQuery(QueryModel):
    after: int = Field(
        0, ge=0, le=2**63 - 1, description="the last id seen (next_after of the previous page)"
    )
    limit: int = Field(100, ge=1, le=1000)


@feed.get("/events", responses={200: EventFeedOut, **ERRORS}, security=MERCHANT)
def merchant_events(query: FeedQuery) -> dict[str, Any]:
    """Merchant: its clicks, claims and redemptions as a feed to poll: pass next_after back as after."""
    items = events.merchant_feed(db_session(), g.merchant_id, query.after, query.limit)
    return {"items": items, "next_after": items[-1]["id"] if items else query.after}
