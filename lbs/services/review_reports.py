"""Reports: anyone may flag a review (once per reporter), and a user may report a merchant
pressuring them, over a review or otherwise (Dianping's reviewers met that despite proof
of purchase)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lbs.db import dialect_insert
from lbs.errors import InvalidParameter, NotFound
from lbs.models import HarassmentReport, Merchant, Review, ReviewReport

ReportReason = Literal["spam", "offensive", "off_topic", "fake", "personal_information", "other"]


def reporter_of_user(user_id: int) -> str:
    return f"user:{user_id}"


def reporter_of_address(secret_key: bytes, address: str) -> str:
    """An anonymous reporter: a keyed digest of the client's address, never the address
    (unkeyed, the 2^32 IPv4 addresses would be one table away)."""
    digest = hmac.new(secret_key, f"review-reporter:{address}".encode(), hashlib.sha256).hexdigest()
    return f"addr:{digest[:64]}"


def report_review(
    session: Session, review_id: int, reporter: str, reason: ReportReason, now: datetime
) -> bool:
    """Flag the review; whether this reporter had not flagged it before (a repeat changes nothing)."""
    if session.execute(select(Review.id).where(Review.id == review_id)).scalar_one_or_none() is None:
        raise NotFound(f"review {review_id} does not exist")
    added = session.execute(
        dialect_insert(session)(ReviewReport)
        .values(review_id=review_id, reporter=reporter, reason=reason, created_at=now)
        .on_conflict_do_nothing(index_elements=[ReviewReport.review_id, ReviewReport.reporter])
        .returning(ReviewReport.id)
    ).scalar_one_or_none()
    if added is None:
        return False
    session.execute(
        update(Review).where(Review.id == review_id).values(report_count=Review.report_count + 1),
        execution_options={"synchronize_session": False},
    )
    return True


def report_harassment(
    session: Session, user_id: int, merchant_id: int, review_id: int | None, text: str, now: datetime
) -> HarassmentReport:
    """The user's report of a merchant; a review it names must be the user's, of that merchant."""
    if session.get(Merchant, merchant_id) is None:
        raise InvalidParameter("merchant_id", f"merchant {merchant_id} does not exist")
    if review_id is not None:
        review = session.get(Review, review_id)
        if review is None or review.user_id != user_id or review.merchant_id != merchant_id:
            raise InvalidParameter(
                "review_id", f"review {review_id} is not a review of yours of merchant {merchant_id}"
            )
    report = HarassmentReport(
        user_id=user_id,
        merchant_id=merchant_id,
        review_id=review_id,
        text=text,
        status="open",
        created_at=now,
    )
    session.add(report)
    session.flush()
    return report


def review_reports(session: Session, limit: int, before_id: int | None) -> list[ReviewReport]:
    """Reports of reviews, newest first, for the operator."""
    query = select(ReviewReport).order_by(ReviewReport.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(ReviewReport.id < before_id)
    return list(session.execute(query).scalars())


def harassment_reports(session: Session, limit: int, before_id: int | None) -> list[HarassmentReport]:
    """Harassment reports, newest first, for the operator."""
    query = select(HarassmentReport).order_by(HarassmentReport.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(HarassmentReport.id < before_id)
    return list(session.execute(query).scalars())
