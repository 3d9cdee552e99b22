"""Pydantic models of path parameters and of what the API returns (for the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lbs.api.problems import Problem, register_model
from lbs.api.responses import Out


class QueryModel(BaseModel):
    """Base of query-string models.

    flask-openapi3 asks a query model for its JSON schema on every request (to find list
    parameters); the schema never changes, so it is built once per class.
    """

    @classmethod
    @cache
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().model_json_schema(*args, **kwargs)


@register_model
class MerchantPath(BaseModel):
    merchant_id: int = Field(ge=1, le=2**63 - 1)


@register_model
class DealPath(BaseModel):
    deal_id: int = Field(ge=1, le=2**63 - 1)


class MerchantOut(Out):
    id: int
    name: str
    category: str
    lat: float
    lon: float
    address: str | None
    phone: str | None
    website: str | None
    price_level: int | None
    opening_hours: str | None
    timezone: str
    status: str
    created_at: str
    updated_at: str
    attribution: str | None = Field(
        description="credit to show with this merchant's data, e.g. © OpenStreetMap contributors; null: none"
    )


class ReasonOut(Out):
    """Why a result ranks where it does: a code (visited, category_habit, next_from_here,
    popular, busy_now, new, deal, distance), its numbers, and the same in words."""

    model_config = ConfigDict(extra="allow")
    code: str
    text: str


class NearbyItemOut(Out):
    merchant: MerchantOut
    distance_m: float
    open_now: bool | None = Field(description="at `at`, in the merchant's zone; null: hours unknown")
    closes_at: str | None = Field(description="when open: the next closing (ISO 8601 with offset)")
    next_open_at: str | None = Field(description="when not open: the next opening (ISO 8601 with offset)")
    deal: DealSummaryOut | None
    next_deal: DealSummaryOut | None
    reasons: list[ReasonOut] | None = Field(None, description="sort=relevance with a model only")


class NearbyPageOut(Out):
    total: int
    ranking: str = Field(description="relevance, distance or deal_ending: the order actually used")
    model: str | None = Field(None, description="version of the model that ranked (relevance)")
    at: str
    items: list[NearbyItemOut]
    next_cursor: str | None


class ApiKeyOut(Out):
    merchant_id: int
    key_id: int
    api_key: str = Field(description="shown only in this response; stored hashed")


class ApiKeyInfoOut(Out):
    id: int
    created_at: datetime
    revoked_at: datetime | None = Field(description="from when it no longer works; null: never set")
    active: bool


class ApiKeyListOut(Out):
    items: list[ApiKeyInfoOut]


class RotatedKeyOut(ApiKeyOut):
    previous_key_id: int
    previous_works_until: datetime


ERRORS: dict[str | int, Any] = {400: Problem, 401: Problem, 403: Problem, 404: Problem}
CONFLICTS: dict[str | int, Any] = {409: Problem, 422: Problem, 429: Problem}


class WindowOut(Out):
    state: str
    starts_at: str
    ends_at: str


class DealSummaryOut(Out):
    id: int
    title: str
    kind: str
    currency: str
    list_price_minor: int
    deal_price_minor: int
    discount_pct: int
    ends_at: str | None
    stock_left: int | None
    window: WindowOut | None


class DealOut(DealSummaryOut):
    merchant_id: int
    description: str | None
    quantity_total: int | None
    quantity_claimed: int
    per_user_limit: int
    valid_from: str
    valid_until: str
    windows: list[dict[str, Any]]
    redeem_within_minutes: int | None
    status: str
    state: str
    ended_at: str | None
    created_at: str
    updated_at: str


class DealListOut(Out):
    items: list[DealOut]


class VoucherOut(Out):
    id: int
    deal_id: int
    deal_title: str
    merchant_id: int
    merchant_name: str
    status: str
    price_minor: int
    currency: str
    claimed_at: str
    expires_at: str
    redeemed_at: str | None
    code: str | None = None
    qr_payload: str | None = None
    qr_svg_url: str | None = None
    qr_png_url: str | None = None


class VoucherListOut(Out):
    items: list[VoucherOut]
    next_before: int | None


class UserOut(Out):
    user_id: int
    token: str = Field(description="shown only in this response; stored hashed")


class TransferCodeOut(Out):
    code: str = Field(description="for the user to enter in the new app, once")
    expires_at: datetime


class VoucherKeyOut(Out):
    merchant_id: int
    voucher_key: str
    algorithm: str


class EventsOut(Out):
    accepted: int
    duplicates: int


NearbyItemOut.model_rebuild()
NearbyPageOut.model_rebuild()


class FeedEventOut(Out):
    id: int
    kind: str
    deal_id: int | None
    voucher_id: int | None
    occurred_at: str


class EventFeedOut(Out):
    items: list[FeedEventOut]
    next_after: int


class PointOut(Out):
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[lon, lat], WGS84 degrees")


class MapPlaceOut(MerchantOut):
    """A merchant on a map: its record, its hours at `at` and its best claimable deal."""

    open_now: bool | None
    closes_at: str | None
    next_open_at: str | None
    deal: DealSummaryOut | None


class NearbyPlaceOut(MapPlaceOut):
    distance_m: float
    next_deal: DealSummaryOut | None


class MerchantFeatureOut(Out):
    type: Literal["Feature"]
    id: int
    geometry: PointOut
    properties: MapPlaceOut


class NearbyFeatureOut(MerchantFeatureOut):
    properties: NearbyPlaceOut


class NearbyCollectionOut(Out):
    """GET /v1/nearby with format=geojson: the page as an RFC 7946 FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[NearbyFeatureOut]
    total: int
    next_cursor: str | None
    ranking: str


class MerchantCollectionOut(Out):
    """GET /v1/merchants?bbox=…: one page of merchants, paged by id."""

    type: Literal["FeatureCollection"]
    features: list[MerchantFeatureOut]
    total: int = Field(description="merchants in the box matching the filters, on every page")
    next_cursor: str | None
    at: str


class ClusterPropertiesOut(Out):
    cluster: Literal[True]
    count: int = Field(description="merchants in this H3 cell matching the filters")
    with_deals: int = Field(description="of them, with a published deal running at `at`")


class ClusterFeatureOut(Out):
    type: Literal["Feature"]
    id: str = Field(description="the H3 cell, hexadecimal")
    geometry: PointOut
    properties: ClusterPropertiesOut


class ClusterCollectionOut(Out):
    """GET /v1/merchants?bbox=…&cluster=true&zoom=Z: counts per H3 cell, in one response."""

    type: Literal["FeatureCollection"]
    features: list[ClusterFeatureOut]
    total: int = Field(description="the sum of the counts")
    zoom: int
    resolution: int = Field(description="the H3 resolution of the cells")
    at: str
