"""Reviews as the public and their authors see them: each marked with what was redeemed and
when, paged by keyset cursors in the newest or the best-rated order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from lbs.errors import InvalidParameter, NotFound
from lbs.models import Deal, Merchant, Review, Voucher
from lbs.services import cursors
from lbs.services.deal_patterns import EPOCH, micros
from lbs.services.reviews import EDIT_WINDOW

ReviewSort = Literal["newest", "rating"]
# Public reviews name no user: a reviewer has no public name in lbs, only a token.
AUTHOR = "a verified customer"


@dataclass(frozen=True)
class ReviewRow:
    review: Review
    deal_title: str
    redeemed_at: datetime
    timezone: str


@dataclass(frozen=True)
class ReviewKey:
    """Where a page ends: the last review's sort key."""

    created_us: int
    id: int
    rating: int | None = None  # sort=rating


def _rows() -> Select[Review, str, datetime | None, str]:
    return (
        select(Review, Deal.title, Voucher.redeemed_at, Merchant.timezone)
        .join(Deal, Deal.id == Review.deal_id)
        .join(Voucher, Voucher.id == Review.voucher_id)
        .join(Merchant, Merchant.id == Review.merchant_id)
    )


def _row(found: Any) -> ReviewRow:
    review, title, redeemed_at, zone = found
    return ReviewRow(review, title, redeemed_at, zone)


def merchant_reviews(
    session: Session, merchant_id: int, sort: ReviewSort, limit: int, after: ReviewKey | None
) -> tuple[list[ReviewRow], ReviewKey | None]:
    """A page of the merchant's reviews, newest first or best first (then newest), and the
    key after its last one if more follow."""
    if session.get(Merchant, merchant_id) is None:
        raise NotFound(f"merchant {merchant_id} does not exist")
    query = _rows().where(Review.merchant_id == merchant_id)
    newest = (Review.created_at.desc(), Review.id.desc())
    if after is not None:
        created = EPOCH + timedelta(microseconds=after.created_us)
        older = or_(Review.created_at < created, and_(Review.created_at == created, Review.id < after.id))
        if sort == "rating":
            assert after.rating is not None
            older = or_(Review.rating < after.rating, and_(Review.rating == after.rating, older))
        query = query.where(older)
    order = (Review.rating.desc(), *newest) if sort == "rating" else newest
    found = [_row(r) for r in session.execute(query.order_by(*order).limit(limit + 1)).all()]
    page = found[:limit]
    if len(found) <= limit:
        return page, None
    last = page[-1].review
    return page, ReviewKey(micros(last.created_at), last.id, last.rating if sort == "rating" else None)


def user_reviews(
    session: Session, user_id: int, limit: int, before_id: int | None
) -> tuple[list[ReviewRow], int | None]:
    """The user's own reviews, newest first (by id), and the id to page on from."""
    query = _rows().where(Review.user_id == user_id)
    if before_id is not None:
        query = query.where(Review.id < before_id)
    found = [_row(r) for r in session.execute(query.order_by(Review.id.desc()).limit(limit + 1)).all()]
    page = found[:limit]
    return page, (page[-1].review.id if len(found) > limit else None)


def review_row(session: Session, review_id: int) -> ReviewRow:
    found = session.execute(_rows().where(Review.id == review_id)).one_or_none()
    if found is None:
        raise NotFound(f"review {review_id} does not exist")
    return _row(found)


def review_view(row: ReviewRow) -> dict[str, Any]:
    """The public representation: no user named; what was redeemed, on the merchant's local date."""
    review = row.review
    on = row.redeemed_at.astimezone(ZoneInfo(row.timezone)).date().isoformat()
    return {
        "id": review.id,
        "merchant_id": review.merchant_id,
        "rating": review.rating,
        "text": review.text,
        "author": AUTHOR,
        "verified": {"redeemed": row.deal_title, "on": on},
        "verified_text": f"verified: redeemed {row.deal_title} on {on}",
        "created_at": review.created_at.isoformat(),
        "updated_at": review.updated_at.isoformat(),
        "reply": (
            None
            if review.reply_text is None or review.replied_at is None
            else {"text": review.reply_text, "replied_at": review.replied_at.isoformat()}
        ),
    }


def own_review_view(row: ReviewRow) -> dict[str, Any]:
    """What the author sees besides the public view: the voucher and how long it is editable."""
    review = row.review
    return {
        **review_view(row),
        "voucher_id": review.voucher_id,
        "deal_id": review.deal_id,
        "editable_until": (review.created_at + EDIT_WINDOW).isoformat(),
    }


def _key(merchant_id: int, sort: ReviewSort) -> list[Any]:
    return ["reviews", merchant_id, sort]


def encode_key(merchant_id: int, sort: ReviewSort, key: ReviewKey) -> str:
    fields: dict[str, Any] = {
        "q": cursors.fingerprint(_key(merchant_id, sort)),
        "t": key.created_us,
        "i": key.id,
    }
    if key.rating is not None:
        fields["r"] = key.rating
    return cursors.encode(fields)


def decode_key(token: str, merchant_id: int, sort: ReviewSort) -> ReviewKey:
    key, query = cursors.decode(
        token,
        lambda raw: (
            ReviewKey(int(raw["t"]), int(raw["i"]), None if raw.get("r") is None else int(raw["r"])),
            str(raw["q"]),
        ),
    )
    if query != cursors.fingerprint(_key(merchant_id, sort)):
        raise InvalidParameter(
            "cursor", "cursor belongs to another query; keep the merchant and sort unchanged"
        )
    if (
        not 0 <= key.id <= 2**63 - 1
        or not 0 <= key.created_us <= micros(datetime(9999, 1, 1, tzinfo=UTC))
        or (sort == "rating") != (key.rating is not None)
        or (key.rating is not None and not 1 <= key.rating <= 5)
    ):
        raise InvalidParameter("cursor", cursors.MALFORMED)
    return key


def views(rows: Sequence[ReviewRow]) -> list[dict[str, Any]]:
    return [review_view(r) for r in rows]
