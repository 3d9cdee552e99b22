"""Pydantic models of path parameters and of what the API returns (for the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from lbs.api.problems import Problem, register_model
from lbs.api.responses import Out
from lbs.services.deals import PAYMENT_DOC, REFUND_DOC


def comma_list(value: object, empty: str) -> object:
    """A list query parameter given comma-separated or repeated (``a,b`` or ``x=a&x=b``), as
    its names; none at all is a ValueError saying ``empty``."""
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    names = [name.strip() for v in values for name in str(v).split(",")]
    if not any(names):
        raise ValueError(empty)
    return [name for name in names if name]


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
    tags: list[str] | None = Field(description="words it is found by besides name and category (q)")
    timezone: str
    status: str
    created_at: str
    updated_at: str
    attribution: str | None = Field(
        description="credit to show with this merchant's data, e.g. © OpenStreetMap contributors; null: none"
    )


class RatingOut(Out):
    """A merchant's rating from its verified reviews (docs/reviews.md#ratings); null: none yet."""

    average: float = Field(
        description="Bayesian average, 1-5: (10 x C + sum of ratings) / (10 + count), C the mean "
        "rating of the same category in the same area (H3 resolution-5 cell), two decimals"
    )
    count: int = Field(description="reviews")
    recommend: float = Field(
        description="share of 4-5 star reviews, as the lower bound of its 95 % Wilson interval, 0-1"
    )
    mean: float = Field(description="the plain mean of the ratings, two decimals")


RATING = "from verified reviews; null: no reviews yet"


class ReasonOut(Out):
    """Why a result ranks where it does: a code (visited, category_habit, next_from_here,
    popular, busy_now, new, deal, distance), its numbers, and the same in words."""

    model_config = ConfigDict(extra="allow")
    code: str
    text: str


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
    payment: Literal["prepaid", "at_counter"] = Field(description=PAYMENT_DOC)
    refund_policy: Literal["anytime", "none"] = Field(description=REFUND_DOC)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # not "null": the field is left out, never sent as null


class Selectable(Out):
    """Base of what `fields=` trims (lbs.api.fields): every field but those in ``always``
    may be left out, so none other is required; each is sent unless `fields` leaves it out."""

    always: ClassVar[tuple[str, ...]] = ("id",)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.__pydantic_fields__
        optional = [n for n, info in fields.items() if n not in cls.always and info.is_required()]
        for name in optional:
            fields[name] = FieldInfo.merge_field_infos(
                fields[name], default=None, json_schema_extra=_no_default
            )
        if optional:
            cls.model_rebuild(force=True)


class HoursIntervalOut(Out):
    opens: str = Field(description="HH:MM, local time, on the day it is listed under")
    closes: str = Field(description="HH:MM, local time; 24:00 is the midnight that ends the day")
    closes_next_day: bool = Field(description="an overnight interval: it closes after midnight")
    state: Literal["open", "unknown"] = Field(description="unknown: the hours say it may be open")


class HoursDayOut(Out):
    date: str = Field(description="the local date, YYYY-MM-DD")
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    intervals: list[HoursIntervalOut] = Field(description="in order; empty: closed all day")
    text: str = Field(description="the day in words: 'Monday: 08:00\u201318:00', 'Sunday: Closed'")


class WeekHoursOut(Out):
    """The merchant's opening_hours over the week (Monday to Sunday) that holds `at`, in
    its own zone: public holidays, DST days and "off" rules as the expression gives them."""

    today: HoursDayOut = Field(description="the day of `at`, local (also in `week`)")
    week: list[HoursDayOut] = Field(min_length=7, max_length=7, description="Monday first")


OPEN_NOW = "at `at`, in the merchant's zone; null: hours unknown"
CLOSES_AT = "when open: the next closing (ISO 8601 with offset)"
NEXT_OPEN_AT = "when not open: the next opening (ISO 8601 with offset)"
HOURS = "opening hours as a week to show; null: no hours, or hours that do not parse"


class MerchantPartOut(MerchantOut, Selectable):
    """A merchant in a nearby page: the fields `fields` names (id always)."""

    rating: RatingOut | None = Field(description=RATING)


class MerchantReadOut(MerchantOut, Selectable):
    """GET /v1/merchants/{id} and /v1/merchants/me: the merchant, its hours at `at` (default
    now) and that week's hours; `fields` may choose some (id always)."""

    rating: RatingOut | None = Field(description=RATING)
    open_now: bool | None = Field(description=OPEN_NOW)
    closes_at: str | None = Field(description=CLOSES_AT)
    next_open_at: str | None = Field(description=NEXT_OPEN_AT)
    hours: WeekHoursOut | None = Field(description=HOURS)


class NearbyItemOut(Selectable):
    """One result of GET /v1/nearby; `fields` may choose some (the merchant's id always)."""

    always = ("merchant",)
    merchant: MerchantPartOut
    distance_m: float
    open_now: bool | None = Field(description=OPEN_NOW)
    closes_at: str | None = Field(description=CLOSES_AT)
    next_open_at: str | None = Field(description=NEXT_OPEN_AT)
    hours: WeekHoursOut | None = Field(description=HOURS + "; only when `fields` names it")
    deal: DealSummaryOut | None
    next_deal: DealSummaryOut | None
    reasons: list[ReasonOut] | None = Field(description="sort=relevance with a model only")


class NearbyPageOut(Out):
    total: int
    ranking: str = Field(description="relevance, distance, rating or deal_ending: the order actually used")
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
    order_id: int | None = Field(
        description="prepaid vouchers: the order that paid for it (GET /v1/me/orders/{id})"
    )
    refunded_at: str | None
    code: str | None = None
    qr_payload: str | None = None
    qr_svg_url: str | None = None
    qr_png_url: str | None = None


class VoucherListOut(Out):
    items: list[VoucherOut]
    next_cursor: str | None = Field(description="pass it as `cursor` for the next page; null on the last")
    next_before: int | None = Field(
        description="deprecated, use next_cursor: the smallest voucher id of this page, null on the last",
        json_schema_extra={"deprecated": True},
    )


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


class FeedEventOut(Out):
    id: int
    kind: str
    deal_id: int | None
    voucher_id: int | None
    occurred_at: str


class EventFeedOut(Out):
    """A merchant's events after a position, to poll."""

    items: list[FeedEventOut]
    next_cursor: str = Field(description="pass it as `cursor` on the next poll; never null (a feed goes on)")
    next_after: int = Field(
        description="deprecated, use next_cursor: the last event id of this page (or the one asked from)",
        json_schema_extra={"deprecated": True},
    )


class PointOut(Out):
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[lon, lat], WGS84 degrees")


class MapPlaceOut(MerchantReadOut):
    """A merchant on a map: its record, its hours at `at` and its best claimable deal;
    `fields` may choose some (id always), and adds `hours` only when it names it."""

    deal: DealSummaryOut | None


class NearbyPlaceOut(MapPlaceOut):
    distance_m: float
    next_deal: DealSummaryOut | None
    reasons: list[ReasonOut] | None = Field(description="sort=relevance with a model only")


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
    model: str | None = Field(None, description="version of the model that ranked (relevance)")
    at: str


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
