"""Users: anonymous sign-up."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_openapi3 import APIBlueprint, Tag

from lbs.api.context import db_session, runtime, utc_now
from lbs.api.schemas import ERRORS, UserOut
from lbs.services import users

bp = APIBlueprint("users", __name__, url_prefix="/v1", abp_tags=[Tag(name="users")])


@bp.post("/users", responses={201: UserOut, **ERRORS})
def create_user() -> tuple[dict[str, Any], int]:
    """Anyone: a new anonymous user. The token is shown only in this response."""
    # Per client address: users are free, so without this a script could mint users to
    # get around each deal's per-user limit. Behind a proxy, configure the WSGI server to
    # pass the client's address (e.g. gunicorn --forwarded-allow-ips).
    rt = runtime()
    rt.rate_limits.enforce(rt.rate_limits.new_users, request.remote_addr or "unknown", "new user")
    user_id, token = users.create_user(db_session(), utc_now())
    return {"user_id": user_id, "token": token}, 201
