"""Users: anonymous sign-up; a token replaced, or moved to a new device with a transfer code."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import ConfigDict

from lbs.api.auth import USER, require_user
from lbs.api.context import db_session, runtime, utc_now
from lbs.api.problems import register_model
from lbs.api.schemas import ERRORS, TransferCodeOut, UserOut
from lbs.services import user_tokens, users
from lbs.services.request_bodies import JsonBody
from lbs.services.voucher_codes import CodeText

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


@register_model
class TransferBody(JsonBody):
    model_config = ConfigDict(extra="forbid")

    code: CodeText


@bp.post("/me/token", responses={201: UserOut, **ERRORS}, security=USER)
def rotate_token() -> tuple[dict[str, Any], int]:
    """User: a new token for the same user; the token making this call stops working."""
    user_id = require_user()
    rt = runtime()
    # Rate limits count per token: a user minting tokens could start each one afresh.
    rt.rate_limits.enforce(rt.rate_limits.new_users, f"user:{user_id}", "token rotation")
    token, old_digest = user_tokens.rotate_token(db_session(), user_id)
    rt.users.forget(old_digest)
    return UserOut(user_id=user_id, token=token).model_dump(mode="json"), 201


@bp.post("/me/transfer-code", responses={201: TransferCodeOut, **ERRORS}, security=USER)
def transfer_code() -> tuple[dict[str, Any], int]:
    """User: a one-time code, valid 15 minutes, that moves this user to another device
    (POST /v1/users/transfer there). An earlier code stops."""
    rt = runtime()
    code, until = user_tokens.new_transfer_code(db_session(), rt.secret_key, require_user(), utc_now())
    return TransferCodeOut(code=code, expires_at=until).model_dump(mode="json"), 201


@bp.post("/users/transfer", responses={200: UserOut, **ERRORS})
def transfer(body: TransferBody) -> dict[str, Any]:
    """Anyone with a transfer code: the user's new token; the old device's token stops."""
    rt = runtime()
    # Counted with new users, per address: a code is 60 bits, and guessing is then hopeless.
    rt.rate_limits.enforce(rt.rate_limits.new_users, request.remote_addr or "unknown", "new user")
    user_id, token, old_digest = user_tokens.redeem_transfer_code(
        db_session(), rt.secret_key, body.code, utc_now()
    )
    rt.users.forget(old_digest)
    return UserOut(user_id=user_id, token=token).model_dump(mode="json")
