"""Merchant API keys: the operator issues them; the operator or the merchant lists and revokes
them; a merchant rotates its own, the old key working on through a grace period. Answers are
serialised through the models the OpenAPI document shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from lbs.api.auth import MERCHANT, OPERATOR, OWNER, bearer_token, require_merchant, require_operator
from lbs.api.context import db_session, utc_now
from lbs.api.problems import register_model
from lbs.api.schemas import ERRORS, ApiKeyListOut, ApiKeyOut, MerchantPath, RotatedKeyOut
from lbs.services import api_keys
from lbs.services.request_bodies import JsonBody

bp = APIBlueprint("api_keys", __name__, url_prefix="/v1", abp_tags=[Tag(name="merchants")])


class KeyPath(BaseModel):
    merchant_id: int = Field(ge=1, le=2**63 - 1)
    key_id: int = Field(ge=1, le=2**63 - 1)


@register_model
class RotateBody(JsonBody):
    model_config = ConfigDict(extra="forbid")

    grace_hours: float = Field(
        24,
        ge=0,
        le=api_keys.MAX_GRACE / timedelta(hours=1),
        allow_inf_nan=False,
        description="how long the key making this call keeps working",
    )


@bp.post("/merchants/<int:merchant_id>/api-keys", responses={201: ApiKeyOut, **ERRORS}, security=OPERATOR)
def issue_api_key(path: MerchantPath) -> tuple[dict[str, Any], int]:
    """Operator: issue an API key for a merchant. The key is shown only in this response."""
    require_operator()
    issued = api_keys.issue_api_key(db_session(), path.merchant_id, utc_now())
    out = ApiKeyOut(merchant_id=path.merchant_id, key_id=issued.id, api_key=issued.key)
    return out.model_dump(mode="json"), 201


@bp.get("/merchants/<int:merchant_id>/api-keys", responses={200: ApiKeyListOut, **ERRORS}, security=OWNER)
def list_api_keys(path: MerchantPath) -> dict[str, Any]:
    """Operator or the merchant: its keys (never the keys themselves), newest first."""
    require_merchant(path.merchant_id)
    keys = api_keys.list_api_keys(db_session(), path.merchant_id, utc_now())
    return ApiKeyListOut.model_validate({"items": keys}).model_dump(mode="json")


@bp.delete(
    "/merchants/<int:merchant_id>/api-keys/<int:key_id>", responses={204: None, **ERRORS}, security=OWNER
)
def revoke_api_key(path: KeyPath) -> tuple[str, int]:
    """Operator or the merchant: stop one of its keys now (a lost device, a leak)."""
    require_merchant(path.merchant_id)
    api_keys.revoke_api_key(db_session(), path.merchant_id, path.key_id, utc_now())
    return "", 204


@bp.post("/merchant/api-keys/rotate", responses={201: RotatedKeyOut, **ERRORS}, security=MERCHANT)
def rotate_api_key(body: RotateBody) -> tuple[dict[str, Any], int]:
    """Merchant: a new key; the key making this call keeps working for grace_hours (default 24)."""
    grace = timedelta(hours=body.grace_hours)
    rotation = api_keys.rotate_api_key(db_session(), bearer_token(), utc_now(), grace)
    out = RotatedKeyOut(
        merchant_id=rotation.merchant_id,
        key_id=rotation.issued.id,
        api_key=rotation.issued.key,
        previous_key_id=rotation.previous_id,
        previous_works_until=rotation.previous_until,
    )
    return out.model_dump(mode="json"), 201
