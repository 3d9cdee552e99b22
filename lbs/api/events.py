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
from lbs.services import cursors, events
from lbs.services.cursors import Cursor

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


FEED_KEY = ["merchant-events"]


@register_model
class FeedQuery(QueryModel):
    cursor: Cursor | None = None
    after: int | None = Field(
        None,
        ge=0,
        le=2**63 - 1,
        description="deprecated, use cursor: the last id seen",
        json_schema_extra={"deprecated": True},  # not deprecated=True: pydantic would warn on reading it
    )
    limit: int = Field(100, ge=1, le=1000)

    def after_id(self) -> int:
        """The last event id the poller has seen: the cursor's, or the deprecated ``after``
        (the cursor wins when both are given; an empty one is none), else none."""
        if self.cursor:
            return cursors.decode_id(self.cursor, FEED_KEY, "pass next_cursor from this feed")
        return self.after or 0


@feed.get("/events", responses={200: EventFeedOut, **ERRORS}, security=MERCHANT)
def merchant_events(query: FeedQuery) -> dict[str, Any]:
    """Merchant: its clicks, claims and redemptions, oldest first, as a feed to poll.

    Pass next_cursor back as cursor on the next poll. A feed has no last page: next_cursor
    is always given, and an empty page's is the position it was asked from."""
    after = query.after_id()
    items = events.merchant_feed(db_session(), g.merchant_id, after, query.limit)
    last = items[-1]["id"] if items else after
    return {"items": items, "next_cursor": cursors.encode_id(FEED_KEY, last), "next_after": last}
