"""Verified reviews: users write and edit theirs, anyone reads and reports them, merchants
answer, users report harassment, the operator reads the reports (docs/reviews.md)."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag

from lbs.api.auth import (
    MERCHANT,
    OPERATOR,
    OPTIONAL_USER,
    USER,
    caller_digest,
    optional_user,
    require_merchant,
    require_operator,
    require_user,
)
from lbs.api.context import db_session, runtime, utc_now
from lbs.api.review_schemas import (
    HarassmentBody,
    HarassmentReportListOut,
    HarassmentReportOut,
    MyReviewListOut,
    MyReviewOut,
    MyReviewsQuery,
    ReplyBody,
    ReportBody,
    ReportListQuery,
    ReportOut,
    ReviewBody,
    ReviewChanges,
    ReviewOut,
    ReviewPageOut,
    ReviewPageQuery,
    ReviewPath,
    ReviewReportListOut,
)
from lbs.api.schemas import CONFLICTS, ERRORS, MerchantPath
from lbs.models import HarassmentReport
from lbs.services import cursors, review_reads, review_reports, reviews

TAGS = [Tag(name="reviews")]
mine = APIBlueprint("my_reviews", __name__, url_prefix="/v1/me", abp_tags=TAGS)
public = APIBlueprint("reviews", __name__, url_prefix="/v1", abp_tags=TAGS)
desk = APIBlueprint("review_desk", __name__, url_prefix="/v1/merchant", abp_tags=TAGS)
moderation = APIBlueprint("review_moderation", __name__, url_prefix="/v1/reports", abp_tags=TAGS)


@mine.before_request
def _user_first() -> None:
    g.user_id = require_user()


@desk.before_request
def _merchant_first() -> None:
    g.merchant_id = require_merchant()


@moderation.before_request
def _operator_first() -> None:
    require_operator()


@mine.post("/reviews", responses={201: MyReviewOut, **ERRORS, **CONFLICTS}, security=USER)
def write_review(body: ReviewBody) -> tuple[dict[str, Any], int]:
    """User: review a voucher of yours redeemed in the last 30 days, once. Without such a
    voucher: 403 review-not-allowed, whose `reason` says why (not_yours, not_redeemed,
    refunded, review_window_closed); a second review of it: 409 already-reviewed."""
    session = db_session()
    review = reviews.write_review(session, g.user_id, body.voucher_id, body.rating, body.text, utc_now())
    return review_reads.own_review_view(review_reads.review_row(session, review.id)), 201


@mine.patch("/reviews/<int:review_id>", responses={200: MyReviewOut, **ERRORS, **CONFLICTS}, security=USER)
def edit_review(path: ReviewPath, body: ReviewChanges) -> dict[str, Any]:
    """User: change the rating or text of your review, for 30 days after writing it (403
    review-not-allowed, reason edit_window_closed, after)."""
    session = db_session()
    reviews.edit_review(session, g.user_id, path.review_id, body.rating, body.text, utc_now())
    return review_reads.own_review_view(review_reads.review_row(session, path.review_id))


@mine.get("/reviews", responses={200: MyReviewListOut, **ERRORS}, security=USER)
def my_reviews(query: MyReviewsQuery) -> dict[str, Any]:
    """User: your reviews, newest first."""
    before = cursors.decode_id(query.cursor, ["my-reviews"], "") if query.cursor else None
    rows, last = review_reads.user_reviews(db_session(), g.user_id, query.limit, before)
    return {
        "items": [review_reads.own_review_view(r) for r in rows],
        "next_cursor": None if last is None else cursors.encode_id(["my-reviews"], last),
    }


@mine.post("/harassment-reports", responses={201: HarassmentReportOut, **ERRORS, **CONFLICTS}, security=USER)
def report_harassment(body: HarassmentBody) -> tuple[dict[str, Any], int]:
    """User: report a merchant pressuring you (over a review of yours, or otherwise)."""
    rt = runtime()
    rt.rate_limits.enforce(rt.rate_limits.reports, caller_digest(), "report")
    report = review_reports.report_harassment(
        db_session(), g.user_id, body.merchant_id, body.review_id, body.text, utc_now()
    )
    return _harassment_view(report), 201


@public.get("/merchants/<int:merchant_id>/reviews", responses={200: ReviewPageOut, **ERRORS})
def merchant_reviews(path: MerchantPath, query: ReviewPageQuery) -> dict[str, Any]:
    """Public: a merchant's verified reviews, newest or best rated first, each saying what its
    writer redeemed and when, with the merchant's reply; and the merchant's rating."""
    session = db_session()
    after = review_reads.decode_key(query.cursor, path.merchant_id, query.sort) if query.cursor else None
    rows, last = review_reads.merchant_reviews(session, path.merchant_id, query.sort, query.limit, after)
    return {
        "merchant_id": path.merchant_id,
        "rating": runtime().live_index.rating(session, path.merchant_id),
        "items": review_reads.views(rows),
        "next_cursor": None if last is None else review_reads.encode_key(path.merchant_id, query.sort, last),
    }


@public.post(
    "/reviews/<int:review_id>/reports",
    responses={201: ReportOut, 200: ReportOut, **ERRORS, **CONFLICTS},
    security=OPTIONAL_USER,
)
def report_review(path: ReviewPath, body: ReportBody) -> tuple[dict[str, Any], int]:
    """Anyone: report a review for moderation (a user token, or none). Counted once per
    reporter: 201 the first time, 200 after. Rate-limited (LBS_RATE_LIMIT_REPORTS)."""
    rt = runtime()
    user_id = optional_user()
    if user_id is not None:
        reporter, who = review_reports.reporter_of_user(user_id), caller_digest()
    else:
        reporter = review_reports.reporter_of_address(rt.secret_key, request.remote_addr or "unknown")
        who = reporter
    rt.rate_limits.enforce(rt.rate_limits.reports, who, "report")
    first = review_reports.report_review(db_session(), path.review_id, reporter, body.reason, utc_now())
    return {"review_id": path.review_id, "first": first}, 201 if first else 200


@desk.post(
    "/reviews/<int:review_id>/reply", responses={200: ReviewOut, **ERRORS, **CONFLICTS}, security=MERCHANT
)
def reply(path: ReviewPath, body: ReplyBody) -> dict[str, Any]:
    """Merchant: answer a review of your shop, once (409 already-replied for a second)."""
    session = db_session()
    reviews.reply_to_review(session, g.merchant_id, path.review_id, body.text, utc_now())
    return review_reads.review_view(review_reads.review_row(session, path.review_id))


@moderation.get("/reviews", responses={200: ReviewReportListOut, **ERRORS}, security=OPERATOR)
def review_report_list(query: ReportListQuery) -> dict[str, Any]:
    """Operator: reports of reviews, newest first (pass the last id as `before` for more)."""
    found = review_reports.review_reports(db_session(), query.limit, query.before)
    return {
        "items": [
            {
                "id": r.id,
                "review_id": r.review_id,
                "reason": r.reason,
                "by": "user" if r.reporter.startswith("user:") else "anonymous",
                "created_at": r.created_at.isoformat(),
            }
            for r in found
        ]
    }


@moderation.get("/harassment", responses={200: HarassmentReportListOut, **ERRORS}, security=OPERATOR)
def harassment_report_list(query: ReportListQuery) -> dict[str, Any]:
    """Operator: harassment reports, newest first (pass the last id as `before` for more)."""
    found = review_reports.harassment_reports(db_session(), query.limit, query.before)
    return {"items": [_harassment_view(r) for r in found]}


def _harassment_view(report: HarassmentReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "merchant_id": report.merchant_id,
        "review_id": report.review_id,
        "text": report.text,
        "status": report.status,
        "created_at": report.created_at.isoformat(),
    }
