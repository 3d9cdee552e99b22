"""Vouchers: users claim deals and hold vouchers; merchants list and redeem them at the counter."""

from __future__ import annotations

import base64
from typing import Any, ClassVar, Literal

from flask import Response, g
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from lbs.api.auth import MERCHANT, USER, caller_digest, require_merchant, require_user
from lbs.api.context import db_session, runtime, utc_now
from lbs.api.problems import register_model
from lbs.api.responses import Media
from lbs.api.schemas import CONFLICTS, ERRORS, DealPath, QueryModel, VoucherKeyOut, VoucherListOut, VoucherOut
from lbs.services import cursors, redemption, voucher_codes, voucher_listing, vouchers
from lbs.services.cursors import Cursor
from lbs.services.request_bodies import JsonBody

holder = APIBlueprint("vouchers", __name__, url_prefix="/v1", abp_tags=[Tag(name="vouchers")])
SVG, PNG = "image/svg+xml", "image/png"
counter = APIBlueprint("counter", __name__, url_prefix="/v1/merchant", abp_tags=[Tag(name="merchant")])


@holder.before_request
def _user_first() -> None:
    g.user_id = require_user()


@counter.before_request
def _merchant_first() -> None:
    g.merchant_id = require_merchant()


@register_model
class VoucherPath(BaseModel):
    voucher_id: int = Field(ge=1, le=2**63 - 1)


@register_model
class ClaimHeaders(QueryModel):  # QueryModel: its JSON schema is built once, not on every request
    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str = Field(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="any unique string per claim (a UUID); a retry with the same key gets the same voucher",
    )


@holder.post(
    "/deals/<int:deal_id>/claim", responses={201: VoucherOut, 200: VoucherOut, **ERRORS, **CONFLICTS},
    security=USER,
)  # fmt: skip
def claim(path: DealPath, header: ClaimHeaders) -> tuple[dict[str, Any], int]:
    """User: claim a deal; 201 with a new voucher, 200 with the same one for a repeated key."""
    rt = runtime()
    rt.rate_limits.enforce(rt.rate_limits.claim, caller_digest(), "claim")
    now = utc_now()
    row, created = vouchers.claim_deal(
        db_session(), rt.secret_key, g.user_id, path.deal_id, header.idempotency_key, now
    )
    return voucher_listing.voucher_view(row, rt.secret_key, now, for_holder=True), 201 if created else 200


@register_model
class VoucherListQuery(QueryModel):
    unchanged: ClassVar[str] = "keep status unchanged"  # a cursor of another query: its 400

    status: Literal["issued", "redeemed", "expired", "refunded"] | None = None
    limit: int = Field(50, ge=1, le=100)
    cursor: Cursor | None = None
    before: int | None = Field(
        None,
        ge=1,
        le=2**63 - 1,
        description="deprecated, use cursor: the smallest voucher id of the previous page",
        json_schema_extra={"deprecated": True},  # not deprecated=True: pydantic would warn on reading it
    )

    def key(self) -> list[Any]:
        """What a cursor of this listing belongs to."""
        return ["vouchers", self.status]

    def before_id(self) -> int | None:
        """Where the page starts: below the cursor's id, or the deprecated ``before`` (the
        cursor wins when both are given; an empty one is none, as in the other lists)."""
        if self.cursor:
            return cursors.decode_id(self.cursor, self.key(), self.unchanged)
        return self.before


def _page(
    query: VoucherListQuery, rows: list[voucher_listing.VoucherRow], for_holder: bool
) -> dict[str, Any]:
    """``rows``: up to one more than the page, which says that another page follows."""
    now = utc_now()
    key = runtime().secret_key
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {
        "items": [voucher_listing.voucher_view(r, key, now, for_holder=for_holder) for r in rows],
        "next_cursor": cursors.encode_id(query.key(), rows[-1].voucher.id) if more else None,
        "next_before": rows[-1].voucher.id if more else None,  # deprecated: next_cursor
    }


@holder.get("/me/vouchers", responses={200: VoucherListOut, **ERRORS}, security=USER)
def my_vouchers(query: VoucherListQuery) -> dict[str, Any]:
    """User: its vouchers, newest first, with status, code and QR payload.

    Pages: pass next_cursor back as cursor (null on the last page)."""
    rows = voucher_listing.user_vouchers(
        db_session(), g.user_id, utc_now(), query.status, query.limit + 1, query.before_id()
    )
    return _page(query, rows, for_holder=True)


@holder.get("/me/vouchers/<int:voucher_id>", responses={200: VoucherOut, **ERRORS}, security=USER)
def my_voucher(path: VoucherPath) -> dict[str, Any]:
    """User: one of its vouchers."""
    row = voucher_listing.user_voucher(db_session(), g.user_id, path.voucher_id)
    return voucher_listing.voucher_view(row, runtime().secret_key, utc_now(), for_holder=True)


@register_model
class QrPath(VoucherPath):
    kind: Literal["svg", "png"]


@holder.get(
    "/me/vouchers/<int:voucher_id>/qr.<kind>",
    responses={200: Media("The QR code: SVG or PNG, as the path asks", {SVG: None, PNG: None}), **ERRORS},
    security=USER,
)
def my_voucher_qr(path: QrPath) -> Response:
    """User: the voucher's QR code (its signed payload) as SVG or PNG."""
    row = voucher_listing.user_voucher(db_session(), g.user_id, path.voucher_id)
    payload = voucher_listing.voucher_view(row, runtime().secret_key, utc_now(), for_holder=True)[
        "qr_payload"
    ]
    mimetype = SVG if path.kind == "svg" else PNG
    response = Response(voucher_codes.qr_image(payload, path.kind), mimetype=mimetype)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@register_model
class MerchantVoucherQuery(VoucherListQuery):
    unchanged: ClassVar[str] = "keep status and deal_id unchanged"

    deal_id: int | None = Field(None, ge=1, le=2**63 - 1)

    def key(self) -> list[Any]:
        return ["merchant-vouchers", self.status, self.deal_id]


@counter.get("/vouchers", responses={200: VoucherListOut, **ERRORS}, security=MERCHANT)
def merchant_vouchers(query: MerchantVoucherQuery) -> dict[str, Any]:
    """Merchant: vouchers of its deals, newest first (codes are not shown).

    Pages: pass next_cursor back as cursor (null on the last page)."""
    rows = voucher_listing.merchant_vouchers(
        db_session(),
        g.merchant_id,
        utc_now(),
        query.deal_id,
        query.status,
        query.limit + 1,
        query.before_id(),
    )
    return _page(query, rows, for_holder=False)


@register_model
class RedeemBody(JsonBody):
    model_config = ConfigDict(extra="forbid")

    code: voucher_codes.CodeText


@counter.post("/vouchers/redeem", responses={200: VoucherOut, **ERRORS, **CONFLICTS}, security=MERCHANT)
def redeem(body: RedeemBody) -> dict[str, Any]:
    """Merchant: redeem a voucher's code at the counter, once."""
    rt = runtime()
    rt.rate_limits.enforce(rt.rate_limits.redeem, caller_digest(), "redeem")
    now = utc_now()
    row = redemption.redeem_voucher(
        db_session(), rt.secret_key, g.merchant_id, body.code, now, rt.settings.commission_bps
    )
    return voucher_listing.voucher_view(row, rt.secret_key, now, for_holder=False)


@counter.get("/voucher-key", responses={200: VoucherKeyOut, **ERRORS}, security=MERCHANT)
def voucher_key() -> dict[str, Any]:
    """Merchant: the key its counter devices use to check voucher QR codes offline."""
    key = voucher_codes.merchant_voucher_key(runtime().secret_key, g.merchant_id)
    return {
        "merchant_id": g.merchant_id,
        "voucher_key": base64.b64encode(key).decode(),
        "algorithm": "HMAC-SHA256 of the payload before its last '.', first 16 bytes, base32 unpadded",
    }
