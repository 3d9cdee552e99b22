"""What the review endpoints take and answer (docs/reviews.md)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lbs.api.problems import register_model
from lbs.api.responses import Out
from lbs.api.schemas import QueryModel, RatingOut
from lbs.services.cursors import Cursor
from lbs.services.request_bodies import JsonBody, PartialUpdate, refuse_null
from lbs.services.review_reports import ReportReason
from lbs.text import MultilineText

MAX_TEXT = 2000
ReviewText = Annotated[
    MultilineText,
    Field(
        min_length=1,
        max_length=MAX_TEXT,
        description=f"1-{MAX_TEXT} characters once trimmed; line breaks kept (as \\n), "
        "no other control characters",
    ),
]
Stars = Annotated[int, Field(ge=1, le=5, description="1 to 5 stars")]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


@register_model
class ReviewBody(JsonBody):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    voucher_id: Id = Field(description="a voucher of yours, redeemed in the last 30 days, not reviewed yet")
    rating: Stars
    text: ReviewText


@register_model
class ReviewChanges(PartialUpdate):
    """Within 30 days of the review: a new rating, a new text, or both."""

    NEVER_NULL: ClassVar[tuple[str, ...]] = ("rating", "text")

    rating: Stars | None = None
    text: ReviewText | None = None

    _never_null = field_validator(*NEVER_NULL)(refuse_null)

    @model_validator(mode="after")
    def _something(self) -> ReviewChanges:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give rating, text or both")
        return self


@register_model
class ReplyBody(JsonBody):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: ReviewText


@register_model
class ReportBody(JsonBody):
    reason: ReportReason = Field(description="why the review should be looked at")


@register_model
class HarassmentBody(JsonBody):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    merchant_id: Id
    review_id: Id | None = Field(None, description="the review of yours it is about, if any")
    text: ReviewText = Field(description="what happened: messages, calls, visits, when")


@register_model
class ReviewPath(BaseModel):
    review_id: Id


@register_model
class ReviewPageQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    sort: Literal["newest", "rating"] = Field(
        "newest", description="newest first, or best rated first (then newest)"
    )
    limit: int = Field(20, ge=1, le=100)
    cursor: Cursor | None = None


@register_model
class MyReviewsQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: Cursor | None = None


@register_model
class ReportListQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=100)
    before: Id | None = Field(None, description="the smallest id of the previous page")


class VerifiedOut(Out):
    redeemed: str = Field(description="the title of the deal the reviewer redeemed")
    on: str = Field(description="the date of the redemption, YYYY-MM-DD, in the merchant's zone")


class ReplyOut(Out):
    text: str
    replied_at: str


class ReviewOut(Out):
    """A verified review: only the holder of a redeemed voucher of this merchant wrote it."""

    id: int
    merchant_id: int
    rating: int = Field(ge=1, le=5)
    text: str
    author: str = Field(description="reviewers are not named: always 'a verified customer'")
    verified: VerifiedOut
    verified_text: str = Field(description="the same in words: 'verified: redeemed <deal title> on <date>'")
    created_at: str
    updated_at: str
    reply: ReplyOut | None = Field(description="the merchant's answer; null: none yet")


class ReviewPageOut(Out):
    merchant_id: int
    rating: RatingOut | None = Field(description="the merchant's rating; null: no reviews yet")
    items: list[ReviewOut]
    next_cursor: str | None = Field(description="pass it as `cursor` for the next page; null on the last")


class MyReviewOut(ReviewOut):
    voucher_id: int
    deal_id: int
    editable_until: str = Field(description="rating and text can be changed until then (30 days)")


class MyReviewListOut(Out):
    items: list[MyReviewOut]
    next_cursor: str | None


class ReportOut(Out):
    review_id: int
    first: bool = Field(description="false: this reporter had reported the review already (counted once)")


class HarassmentReportOut(Out):
    id: int
    merchant_id: int
    review_id: int | None
    text: str
    status: Literal["open", "closed"]
    created_at: str


class HarassmentReportListOut(Out):
    items: list[HarassmentReportOut]


class ReviewReportOut(Out):
    id: int
    review_id: int
    reason: str
    by: Literal["user", "anonymous"]
    created_at: str


class ReviewReportListOut(Out):
    items: list[ReviewReportOut]
