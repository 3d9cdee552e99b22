"""POST /v1/events: what a user's client saw happen (impressions, clicks, visits)."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_openapi3 import APIBlueprint, Tag

from lbs.api.auth import SECURITY, require_user
from lbs.api.context import db_session, utc_now
from lbs.api.problems import register_model
from lbs.api.schemas import ERRORS, EventsOut
from lbs.services import events

bp = APIBlueprint("events", __name__, url_prefix="/v1", abp_tags=[Tag(name="events")])

register_model(events.ClientEvents)


@bp.before_request
def _user_first() -> None:
    # Credentials are checked before the body is looked at.
    g.user_id = require_user()


@bp.post("/events", responses={200: EventsOut, **ERRORS}, security=SECURITY)
def post_events(body: events.ClientEvents) -> dict[str, Any]:
    """User: client-side events; resent ids are counted as duplicates, not stored twice."""
    accepted, duplicates = events.ingest_client_events(db_session(), g.user_id, body.events, utc_now())
    return {"accepted": accepted, "duplicates": duplicates}
