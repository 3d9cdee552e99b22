"""Users: anonymous sign-up, and the events their clients report."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag

from lbs.api.auth import SECURITY, require_user
from lbs.api.context import db_session, utc_now
from lbs.api.problems import register_model
from lbs.api.schemas import ERRORS, EventsOut, UserOut
from lbs.services import events, users

bp = APIBlueprint("users", __name__, url_prefix="/v1", abp_tags=[Tag(name="users")])

register_model(events.ClientEvents)


@bp.before_request
def _user_first() -> None:
    if request.path.endswith("/events"):  # credentials before the body is looked at
        g.user_id = require_user()


@bp.post("/users", responses={201: UserOut, **ERRORS})
def create_user() -> tuple[dict[str, Any], int]:
    """Anyone: a new anonymous user. The token is shown only in this response."""
    user_id, token = users.create_user(db_session(), utc_now())
    return {"user_id": user_id, "token": token}, 201


@bp.post("/events", responses={200: EventsOut, **ERRORS}, security=SECURITY)
def post_events(body: events.ClientEvents) -> dict[str, Any]:
    """User: client-side events (impression, click, visit); resent ids are counted as duplicates."""
    accepted, duplicates = events.ingest_client_events(db_session(), g.user_id, body.events, utc_now())
    return {"accepted": accepted, "duplicates": duplicates}
