"""Claims and redemptions: the atomic claim of a deal, vouchers, and redeeming them at the counter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbs.db import dialect_insert
from lbs.errors import (
    ClaimLimitReached,
    Conflict,
    DealNotClaimable,
    IdempotencyKeyReused,
    InvalidParameter,
    NotFound,
    VoucherAlreadyRedeemed,
    VoucherExpired,
)
from lbs.models import Deal, Merchant, UserDealClaims, Voucher
from lbs.services import voucher_codes as codes
from lbs.services.deal_offers import DealAt, public_deal
from lbs.services.events import record_events, server_event

VoucherStatus = Literal["issued", "redeemed", "expired"]
_CODE_ATTEMPTS = 3  # a fresh nonce if a 60-bit code ever collides within a merchant
_EDIT_RETRIES = 3  # re-checks of a deal its merchant edits while it is being claimed


def voucher_status(voucher: Voucher, now: datetime) -> VoucherStatus:
    if voucher.redeemed_at is not None:
        return "redeemed"
    return "expired" if now >= voucher.expires_at else "issued"


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


def _not_claimable(offer: DealAt) -> DealNotClaimable:
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
        raise _not_claimable(offer)
    deal = offer.deal
    expires_at = deal.valid_until
    if deal.redeem_within_minutes is not None:
        expires_at = now + timedelta(minutes=deal.redeem_within_minutes)

    voucher = None
    for _ in range(_CODE_ATTEMPTS):
        nonce = codes.new_nonce()
        digest = codes.code_digest(secret_key, codes.code_for(secret_key, nonce))
        candidate = Voucher(
            deal_id=deal.id, merchant_id=deal.merchant_id, user_id=user_id, idempotency_key=idempotency_key,
            nonce=nonce, code_digest=digest, price_minor=deal.deal_price_minor, currency=deal.currency,
            claimed_at=now, expires_at=expires_at,
        )  # fmt: skip
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
            if not _code_taken(session, deal.merchant_id, digest):
                raise
    if voucher is None:
        raise RuntimeError("could not draw a unique voucher code")

    # The stock, taken only if the deal is still the version whose windows were checked
    # above: a merchant's edit in between (updated_at moves) means checking again.
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
            raise _not_claimable(offer)
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
    record_events(
        session,
        [server_event("claim", now, user_id=user_id, merchant_id=deal.merchant_id, deal_id=deal.id,
                      voucher_id=voucher.id)],
    )  # fmt: skip
    return VoucherRow(voucher, deal.title, offer.merchant_name), True


def redeem_voucher(
    session: Session, secret_key: bytes, merchant_id: int, code_text: str, now: datetime
) -> VoucherRow:
    """Redeem once, only at the voucher's merchant, only before it expires."""
    code = codes.normalize_code(code_text)
    if code is None:
        raise InvalidParameter("code", f"not a voucher code: expected {codes.CODE_FORMAT}")
    digest = codes.code_digest(secret_key, code)
    voucher = session.execute(
        select(Voucher).where(Voucher.merchant_id == merchant_id, Voucher.code_digest == digest)
    ).scalar_one_or_none()
    # Looked up by a keyed digest, so neither the time taken nor a copy of the database says
    # anything about a code; the same 404 whether it is unknown or another merchant's.
    if voucher is None:
        raise NotFound("no voucher with this code at your shop")
    if voucher.redeemed_at is None and now < voucher.expires_at:
        redeemed = session.execute(
            update(Voucher)
            .where(Voucher.id == voucher.id, Voucher.redeemed_at.is_(None), Voucher.expires_at > now)
            .values(redeemed_at=now)
            .returning(Voucher.id),
            execution_options={"synchronize_session": False},
        ).scalar_one_or_none()
        if redeemed is not None:
            session.refresh(voucher)
            record_events(
                session,
                [server_event("redemption", now, user_id=voucher.user_id, merchant_id=merchant_id,
                              deal_id=voucher.deal_id, voucher_id=voucher.id)],
            )  # fmt: skip
            return _row(session, voucher.id)
        session.refresh(voucher)
    if voucher.redeemed_at is not None:
        raise VoucherAlreadyRedeemed(
            f"this voucher was redeemed at {voucher.redeemed_at.isoformat()}",
            redeemed_at=voucher.redeemed_at.isoformat(),
        )
    raise VoucherExpired(
        f"this voucher expired at {voucher.expires_at.isoformat()}", expires_at=voucher.expires_at.isoformat()
    )


@dataclass(frozen=True)
class VoucherRow:
    voucher: Voucher
    deal_title: str
    merchant_name: str


def _listing() -> Select[Voucher, str, str]:
    return (
        select(Voucher, Deal.title, Merchant.name)
        .join(Deal, Deal.id == Voucher.deal_id)
        .join(Merchant, Merchant.id == Voucher.merchant_id)
    )


def _with_status(
    query: Select[Voucher, str, str], status: VoucherStatus | None, now: datetime
) -> Select[Voucher, str, str]:
    if status == "redeemed":
        return query.where(Voucher.redeemed_at.is_not(None))
    if status == "expired":
        return query.where(Voucher.redeemed_at.is_(None), Voucher.expires_at <= now)
    if status == "issued":
        return query.where(Voucher.redeemed_at.is_(None), Voucher.expires_at > now)
    return query


def user_vouchers(
    session: Session,
    user_id: int,
    now: datetime,
    status: VoucherStatus | None,
    limit: int,
    before: int | None,
) -> list[VoucherRow]:
    """Newest first; ``before`` is the smallest id of the previous page."""
    query = _with_status(_listing().where(Voucher.user_id == user_id), status, now)
    if before is not None:
        query = query.where(Voucher.id < before)
    rows = session.execute(query.order_by(Voucher.id.desc()).limit(limit))
    return [VoucherRow(*row) for row in rows]


def _row(session: Session, voucher_id: int) -> VoucherRow:
    return VoucherRow(*session.execute(_listing().where(Voucher.id == voucher_id)).one())


def user_voucher(session: Session, user_id: int, voucher_id: int) -> VoucherRow:
    """The user's voucher; anyone else's is a 404 as if it did not exist."""
    row = session.execute(
        _listing().where(Voucher.id == voucher_id, Voucher.user_id == user_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"you have no voucher {voucher_id}")
    return VoucherRow(*row)


def merchant_vouchers(
    session: Session,
    merchant_id: int,
    now: datetime,
    deal_id: int | None,
    status: VoucherStatus | None,
    limit: int,
    before: int | None,
) -> list[VoucherRow]:
    query = _with_status(_listing().where(Voucher.merchant_id == merchant_id), status, now)
    if deal_id is not None:
        query = query.where(Voucher.deal_id == deal_id)
    if before is not None:
        query = query.where(Voucher.id < before)
    rows = session.execute(query.order_by(Voucher.id.desc()).limit(limit))
    return [VoucherRow(*row) for row in rows]


def voucher_view(row: VoucherRow, secret_key: bytes, now: datetime, *, for_holder: bool) -> dict[str, Any]:
    """The holder sees the code and its QR payload; the merchant sees neither (it has them at the counter)."""
    voucher = row.voucher
    view: dict[str, Any] = {
        "id": voucher.id,
        "deal_id": voucher.deal_id,
        "deal_title": row.deal_title,
        "merchant_id": voucher.merchant_id,
        "merchant_name": row.merchant_name,
        "status": voucher_status(voucher, now),
        "price_minor": voucher.price_minor,
        "currency": voucher.currency,
        "claimed_at": voucher.claimed_at.isoformat(),
        "expires_at": voucher.expires_at.isoformat(),
        "redeemed_at": None if voucher.redeemed_at is None else voucher.redeemed_at.isoformat(),
    }
    if for_holder:
        code = codes.code_for(secret_key, voucher.nonce)
        key = codes.merchant_voucher_key(secret_key, voucher.merchant_id)
        view["code"] = codes.display_code(code)
        view["qr_payload"] = codes.qr_payload(key, voucher.id, voucher.merchant_id, voucher.expires_at, code)
        view["qr_svg_url"] = f"/v1/me/vouchers/{voucher.id}/qr.svg"
        view["qr_png_url"] = f"/v1/me/vouchers/{voucher.id}/qr.png"
    return view
