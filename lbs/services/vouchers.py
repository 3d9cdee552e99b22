"""Claims: the atomic claim of a deal's unit of stock, and the vouchers claims and paid orders get."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbs.db import dialect_insert
from lbs.errors import (
    ClaimLimitReached,
    Conflict,
    DealNotClaimable,
    IdempotencyKeyReused,
    PrepaidDeal,
)
from lbs.models import Deal, Order, UserDealClaims, Voucher
from lbs.services import voucher_codes as codes
from lbs.services.deal_offers import DealAt, public_deal
from lbs.services.events import record_events, server_event
from lbs.services.voucher_listing import VoucherRow, user_voucher

_CODE_ATTEMPTS = 3  # a fresh nonce if a 60-bit code ever collides within a merchant
_EDIT_RETRIES = 3  # re-checks of a deal its merchant edits while it is being claimed


def _by_key(session: Session, user_id: int, idempotency_key: str) -> Voucher | None:
    return session.execute(
        select(Voucher).where(Voucher.user_id == user_id, Voucher.idempotency_key == idempotency_key)
    ).scalar_one_or_none()


def _code_taken(session: Session, merchant_id: int, digest: str) -> bool:
    found = session.execute(
        select(Voucher.id).where(Voucher.merchant_id == merchant_id, Voucher.code_digest == digest)
    ).first()
    return found is not None


def _replay_row(session: Session, voucher: Voucher, deal_id: int, idempotency_key: str) -> VoucherRow:
    if voucher.deal_id != deal_id:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {idempotency_key!r} was used to claim deal {voucher.deal_id}, not {deal_id}; "
            "use a new key for a new claim",
            field="Idempotency-Key",
        )
    return user_voucher(session, voucher.user_id, voucher.id)


def not_claimable(offer: DealAt) -> DealNotClaimable:
    reason = offer.unclaimable_reason
    return DealNotClaimable(
        f"deal {offer.deal.id} cannot be claimed now: {reason}",
        reason=reason,
        state=offer.state.value,
        window=offer.window(),
    )


def claim_deal(
    session: Session, secret_key: bytes, user_id: int, deal_id: int, idempotency_key: str, now: datetime
) -> tuple[VoucherRow, bool]:
    """One voucher for the user, or the one this Idempotency-Key already got (then created=False).

    Three writes in one transaction, any refusal rolling all back: the voucher (its unique
    (user, key) makes a concurrent retry wait for this one and then replay it), one unit of
    stock by a conditional update, and the user's count by a conditional upsert.
    """
    existing = _by_key(session, user_id, idempotency_key)
    if existing is not None:
        return _replay_row(session, existing, deal_id, idempotency_key), False
    offer = public_deal(session, deal_id, now)
    if not offer.claimable:
        raise not_claimable(offer)
    deal = offer.deal
    if deal.payment == "prepaid":
        raise PrepaidDeal(
            f"deal {deal.id} is paid online: order it with POST /v1/deals/{deal.id}/orders",
            orders_url=f"/v1/deals/{deal.id}/orders",
        )
    expires_at = voucher_expiry(deal, now)

    voucher = None
    for _ in range(_CODE_ATTEMPTS):
        candidate = _drawn(secret_key, deal, user_id, idempotency_key, now, expires_at)
        session.add(candidate)
        try:
            session.flush()
            voucher = candidate
            break
        except IntegrityError:
            # Nothing is written yet in this transaction (the voucher comes first), so
            # rolling all of it back loses nothing; a savepoint would cost two round trips
            # on every claim for a race that is rare.
            session.rollback()
            existing = _by_key(session, user_id, idempotency_key)
            if existing is not None:  # a concurrent request with this key committed first
                return _replay_row(session, existing, deal_id, idempotency_key), False
            if not _code_taken(session, deal.merchant_id, candidate.code_digest):
                raise
    if voucher is None:
        raise RuntimeError("could not draw a unique voucher code")
    offer = take_unit(session, offer, user_id, now)
    record_events(
        session,
        [server_event("claim", now, user_id=user_id, merchant_id=deal.merchant_id, deal_id=deal.id,
                      voucher_id=voucher.id)],
    )  # fmt: skip
    return VoucherRow(voucher, deal.title, offer.merchant_name), True


def voucher_expiry(deal: Deal, now: datetime) -> datetime:
    if deal.redeem_within_minutes is not None:
        return now + timedelta(minutes=deal.redeem_within_minutes)
    return deal.valid_until


def _drawn(
    secret_key: bytes, deal: Deal, user_id: int, idempotency_key: str, now: datetime, expires_at: datetime
) -> Voucher:
    """A voucher with a fresh code (HMAC of a random nonce), not yet added."""
    nonce = codes.new_nonce()
    digest = codes.code_digest(secret_key, codes.code_for(secret_key, nonce))
    return Voucher(
        deal_id=deal.id, merchant_id=deal.merchant_id, user_id=user_id, idempotency_key=idempotency_key,
        nonce=nonce, code_digest=digest, price_minor=deal.deal_price_minor, currency=deal.currency,
        claimed_at=now, expires_at=expires_at,
    )  # fmt: skip


def issue_paid_voucher(
    session: Session, secret_key: bytes, deal: Deal, order: Order, now: datetime
) -> Voucher:
    """The voucher of a paid order, whose unit of stock the order already holds: drawn in a
    savepoint, since the order's own update precedes it in the transaction. Priced at what
    the order took, which a late payment's deal may since have changed."""
    for _ in range(_CODE_ATTEMPTS):
        expires_at = voucher_expiry(deal, now)
        voucher = _drawn(secret_key, deal, order.user_id, f"order:{order.ref}", now, expires_at)
        voucher.order_id = order.id
        voucher.price_minor, voucher.currency = order.amount_minor, order.currency
        try:
            with session.begin_nested():
                session.add(voucher)
        except IntegrityError:
            if not _code_taken(session, deal.merchant_id, voucher.code_digest):
                raise
            continue
        record_events(
            session,
            [server_event("claim", now, user_id=order.user_id, merchant_id=deal.merchant_id, deal_id=deal.id,
                          voucher_id=voucher.id)],
        )  # fmt: skip
        return voucher
    raise RuntimeError("could not draw a unique voucher code")


def take_unit(session: Session, offer: DealAt, user_id: int, now: datetime) -> DealAt:
    """One unit of the deal's stock and one of the user's claims, or a refusal (then roll back:
    the stock may be taken already). The stock is taken only if the deal is still the version
    whose windows were checked: a merchant's edit in between (updated_at moves) means checking
    again. Returns the offer as last checked."""
    deal = offer.deal
    for _ in range(_EDIT_RETRIES):
        taken = session.execute(
            update(Deal)
            .where(
                Deal.id == deal.id,
                Deal.updated_at == deal.updated_at,
                Deal.status == "published",
                Deal.valid_from <= now,
                Deal.valid_until > now,
                Deal.ended_at.is_(None),
                or_(Deal.quantity_total.is_(None), Deal.quantity_claimed < Deal.quantity_total),
            )
            .values(quantity_claimed=Deal.quantity_claimed + 1)
            .returning(Deal.quantity_claimed),
            execution_options={"synchronize_session": False},
        ).scalar_one_or_none()
        if taken is not None:
            break
        session.refresh(deal)
        offer = DealAt.of(deal, offer.tz.key, now, offer.merchant_name)
        if not offer.claimable:
            raise not_claimable(offer)
    else:
        raise Conflict("the deal is being edited; retry the claim with the same Idempotency-Key")

    counted = session.execute(
        dialect_insert(session)(UserDealClaims)
        .values(deal_id=deal.id, user_id=user_id, claims=1)
        .on_conflict_do_update(
            index_elements=[UserDealClaims.deal_id, UserDealClaims.user_id],
            set_={"claims": UserDealClaims.claims + 1},
            where=UserDealClaims.claims < deal.per_user_limit,
        )
        .returning(UserDealClaims.claims)
    ).scalar_one_or_none()
    if counted is None:
        raise ClaimLimitReached(
            f"you already hold {deal.per_user_limit} voucher(s) of deal {deal.id}, its limit per user",
            per_user_limit=deal.per_user_limit,
        )
    return offer


def release_unit(session: Session, deal_id: int, user_id: int) -> None:
    """Give back what take_unit took: the unit to the deal's stock, the claim to the user."""
    session.execute(
        update(Deal)
        .where(Deal.id == deal_id, Deal.quantity_claimed > 0)
        .values(quantity_claimed=Deal.quantity_claimed - 1),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(UserDealClaims)
        .where(
            UserDealClaims.deal_id == deal_id, UserDealClaims.user_id == user_id, UserDealClaims.claims > 0
        )
        .values(claims=UserDealClaims.claims - 1),
        execution_options={"synchronize_session": False},
    )
