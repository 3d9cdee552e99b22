"""Verified reviews: who may write one (the holder of a redeemed voucher, within 30 days),
edits by the author (30 days), the merchant's one reply, and the merchant's rating totals
kept by increments in the same transaction.

A write that changes a rating takes the next merchant revision first (services.revisions),
so review writes queue on that row in commit order, and every worker's live index sees
the new totals with its next poll (lbs.services.rating_table). Reviews written in bulk
(a seeded city's) set their merchants' totals once, from the reviews (recount_ratings).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from lbs.db import dialect_insert
from lbs.errors import AlreadyReplied, AlreadyReviewed, Conflict, Forbidden, NotFound, ReviewNotAllowed
from lbs.models import Merchant, MerchantRating, Review, Voucher
from lbs.services.ratings import RECOMMEND_FROM
from lbs.services.revisions import next_revision

REVIEW_WINDOW = timedelta(days=30)  # from the redemption
EDIT_WINDOW = timedelta(days=30)  # from the review
_CAS_ATTEMPTS = 3


def write_review(
    session: Session, user_id: int, voucher_id: int, rating: int, text: str, now: datetime
) -> Review:
    """The user's review of a voucher of theirs, redeemed in the last 30 days: 403 saying
    why not otherwise, 409 if the voucher has its review already."""
    voucher = session.get(Voucher, voucher_id)
    if voucher is None or voucher.user_id != user_id:
        raise ReviewNotAllowed(
            f"voucher {voucher_id} is not one of yours: a review needs a voucher you claimed and redeemed",
            "not_yours",
        )
    if voucher.refunded_at is not None:
        raise ReviewNotAllowed(
            f"voucher {voucher_id} was refunded: only a redeemed voucher is reviewed", "refunded"
        )
    if voucher.redeemed_at is None:
        raise ReviewNotAllowed(
            f"voucher {voucher_id} has not been redeemed: review it once the merchant has redeemed it",
            "not_redeemed",
        )
    if _review_of(session, voucher_id) is not None:
        raise _already(voucher_id)
    closes = voucher.redeemed_at + REVIEW_WINDOW
    if now >= closes:
        raise ReviewNotAllowed(
            f"the review window closed 30 days after the redemption, on {closes.date().isoformat()}",
            "review_window_closed",
            closed_at=closes.isoformat(),
        )
    revision = next_revision(session)
    # ON CONFLICT: two requests for one voucher at once make one review, and the other a 409.
    review_id = session.execute(
        dialect_insert(session)(Review)
        .values(
            merchant_id=voucher.merchant_id,
            deal_id=voucher.deal_id,
            user_id=user_id,
            voucher_id=voucher_id,
            rating=rating,
            text=text,
            created_at=now,
            updated_at=now,
            report_count=0,
        )
        .on_conflict_do_nothing(index_elements=[Review.voucher_id])
        .returning(Review.id)
    ).scalar_one_or_none()
    if review_id is None:
        raise _already(voucher_id)
    _count(session, voucher.merchant_id, revision, reviews=1, stars=rating, recommends=_recommends(rating))
    return _fresh(session, review_id)


def edit_review(
    session: Session, user_id: int, review_id: int, rating: int | None, text: str | None, now: datetime
) -> Review:
    """The author changes the rating or the text, within 30 days of writing it."""
    review = own_review(session, user_id, review_id)
    until = review.created_at + EDIT_WINDOW
    if now >= until:
        raise ReviewNotAllowed(
            f"a review can be changed for 30 days; this one was until {until.isoformat()}",
            "edit_window_closed",
            editable_until=until.isoformat(),
        )
    values: dict[str, object] = {"updated_at": now}
    if text is not None:
        values["text"] = text
    if rating is None or rating == review.rating:
        _set(session, review_id, values)
        return _fresh(session, review_id)
    revision = next_revision(session)
    for _ in range(_CAS_ATTEMPTS):
        old = review.rating
        # Compare and set: the totals move by the difference from the rating this edit replaced.
        changed = session.execute(
            update(Review)
            .where(Review.id == review_id, Review.rating == old)
            .values(rating=rating, **values)
            .returning(Review.id),
            execution_options={"synchronize_session": False},
        ).scalar_one_or_none()
        if changed is not None:
            recommends = _recommends(rating) - _recommends(old)
            _count(
                session, review.merchant_id, revision, reviews=0, stars=rating - old, recommends=recommends
            )
            return _fresh(session, review_id)
        session.refresh(review)
    raise Conflict("the review is being changed by another request; retry")


def reply_to_review(session: Session, merchant_id: int, review_id: int, text: str, now: datetime) -> Review:
    """The merchant's one public answer to a review of its own (409 for a second)."""
    review = session.get(Review, review_id)
    if review is None:
        raise NotFound(f"review {review_id} does not exist")
    if review.merchant_id != merchant_id:
        raise Forbidden(f"review {review_id} is of another merchant; you can answer only your own")
    answered = session.execute(
        update(Review)
        .where(Review.id == review_id, Review.reply_text.is_(None))
        .values(reply_text=text, replied_at=now)
        .returning(Review.id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    if answered is None:
        session.refresh(review)
        replied = review.replied_at.isoformat() if review.replied_at else ""
        raise AlreadyReplied(f"you answered review {review_id} already, at {replied}", replied_at=replied)
    return _fresh(session, review_id)


def recount_ratings(session: Session, after_review_id: int) -> int:
    """For reviews written in bulk, not by write_review (seed.loader): the totals of every
    merchant with a review of id above ``after_review_id``, counted again from all its
    reviews, and its revision moved so that every worker's ratings follow. Returns how
    many merchants. For a load in its own transaction: totals set, not incremented, so a
    review another transaction writes meanwhile may be left out until its own increment."""
    rated = select(Review.merchant_id).where(Review.id > after_review_id).distinct()
    revision = next_revision(session)
    session.execute(
        delete(MerchantRating).where(MerchantRating.merchant_id.in_(rated)),
        execution_options={"synchronize_session": False},
    )
    totals = (
        select(
            Review.merchant_id,
            func.count(),
            func.sum(Review.rating),
            func.sum(case((Review.rating >= RECOMMEND_FROM, 1), else_=0)),
        )
        .where(Review.merchant_id.in_(rated))
        .group_by(Review.merchant_id)
    )
    columns = ["merchant_id", "review_count", "rating_sum", "recommend_count"]
    session.execute(insert(MerchantRating).from_select(columns, totals))
    session.execute(
        update(Merchant).where(Merchant.id.in_(rated)).values(revision=revision),
        execution_options={"synchronize_session": False},
    )
    return int(session.execute(select(func.count()).select_from(rated.subquery())).scalar_one())


def own_review(session: Session, user_id: int, review_id: int) -> Review:
    review = session.get(Review, review_id)
    if review is None or review.user_id != user_id:
        raise NotFound(f"you have no review {review_id}")
    return review


def _review_of(session: Session, voucher_id: int) -> int | None:
    return session.execute(select(Review.id).where(Review.voucher_id == voucher_id)).scalar_one_or_none()


def _already(voucher_id: int) -> AlreadyReviewed:
    return AlreadyReviewed(
        f"voucher {voucher_id} has its review already; change it with PATCH /v1/me/reviews/{{id}}",
        voucher_id=voucher_id,
    )


def _recommends(rating: int) -> int:
    return 1 if rating >= RECOMMEND_FROM else 0


def _count(
    session: Session, merchant_id: int, revision: int, *, reviews: int, stars: int, recommends: int
) -> None:
    """Move the merchant's totals by increments (never by a value read earlier), and its
    revision, so that every worker's ratings follow. A new review may make the totals row;
    an edit moves the one its review made."""
    moved = {
        "review_count": MerchantRating.review_count + reviews,
        "rating_sum": MerchantRating.rating_sum + stars,
        "recommend_count": MerchantRating.recommend_count + recommends,
    }
    if reviews:
        session.execute(
            dialect_insert(session)(MerchantRating)
            .values(
                merchant_id=merchant_id, review_count=reviews, rating_sum=stars, recommend_count=recommends
            )
            .on_conflict_do_update(index_elements=[MerchantRating.merchant_id], set_=moved)
        )
    else:
        session.execute(
            update(MerchantRating).where(MerchantRating.merchant_id == merchant_id).values(**moved),
            execution_options={"synchronize_session": False},
        )
    session.execute(
        update(Merchant).where(Merchant.id == merchant_id).values(revision=revision),
        execution_options={"synchronize_session": False},
    )


def _set(session: Session, review_id: int, values: dict[str, object]) -> None:
    session.execute(
        update(Review).where(Review.id == review_id).values(**values),
        execution_options={"synchronize_session": False},
    )


def _fresh(session: Session, review_id: int) -> Review:
    review = session.get(Review, review_id, populate_existing=True)
    assert review is not None
    return review
