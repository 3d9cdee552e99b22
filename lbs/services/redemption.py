"""Redemption at the counter: a voucher's code, once, at its merchant, before it expires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lbs.errors import InvalidParameter, NotFound, VoucherAlreadyRedeemed, VoucherExpired, VoucherRefunded
from lbs.models import Voucher
from lbs.payments.periods import period_start
from lbs.services import voucher_codes as codes
from lbs.services.events import record_events, server_event
from lbs.services.voucher_listing import VoucherRow, row_of


def commission(price_minor: int, commission_bps: int) -> int:
    """The platform's share of a price, rounded half up to a whole minor unit."""
    return (price_minor * commission_bps + 5_000) // 10_000


def redeem_voucher(
    session: Session, secret_key: bytes, merchant_id: int, code_text: str, now: datetime, commission_bps: int
) -> VoucherRow:
    """Redeem once, only at the voucher's merchant, only before it expires, never once refunded.

    A prepaid voucher is earned by its merchant as it is redeemed: its commission is fixed
    now, at the rate of now, and it joins the statement of the current period."""
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
    if voucher.redeemed_at is None and voucher.refunded_at is None and now < voucher.expires_at:
        prepaid = voucher.order_id is not None
        # The same conditional update a refund makes (refunded_at IS NULL, redeemed_at IS
        # NULL): whichever commits first wins, and the other finds no row.
        redeemed = session.execute(
            update(Voucher)
            .where(
                Voucher.id == voucher.id,
                Voucher.redeemed_at.is_(None),
                Voucher.refunded_at.is_(None),
                Voucher.expires_at > now,
            )
            .values(
                redeemed_at=now,
                earned_at=now if prepaid else None,
                commission_minor=commission(voucher.price_minor, commission_bps) if prepaid else None,
                settlement_period=period_start(now) if prepaid else None,
            )
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
            return row_of(session, voucher.id)
        session.refresh(voucher)
    if voucher.redeemed_at is not None:
        raise VoucherAlreadyRedeemed(
            f"this voucher was redeemed at {voucher.redeemed_at.isoformat()}",
            redeemed_at=voucher.redeemed_at.isoformat(),
        )
    if voucher.refunded_at is not None:
        raise VoucherRefunded(
            f"this voucher was refunded at {voucher.refunded_at.isoformat()}",
            refunded_at=voucher.refunded_at.isoformat(),
        )
    raise VoucherExpired(
        f"this voucher expired at {voucher.expires_at.isoformat()}", expires_at=voucher.expires_at.isoformat()
    )
