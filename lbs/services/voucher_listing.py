"""Vouchers as their holders and merchants see them: statuses, listings and the view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from lbs.errors import NotFound
from lbs.models import Deal, Merchant, Voucher
from lbs.services import voucher_codes as codes

VoucherStatus = Literal["issued", "redeemed", "expired", "refunded"]


def voucher_status(voucher: Voucher, now: datetime) -> VoucherStatus:
    if voucher.redeemed_at is not None:
        return "redeemed"
    if voucher.refunded_at is not None:
        return "refunded"
    return "expired" if now >= voucher.expires_at else "issued"


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
    if status == "refunded":
        return query.where(Voucher.refunded_at.is_not(None))
    unused = (Voucher.redeemed_at.is_(None), Voucher.refunded_at.is_(None))
    if status == "expired":
        return query.where(*unused, Voucher.expires_at <= now)
    if status == "issued":
        return query.where(*unused, Voucher.expires_at > now)
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


def row_of(session: Session, voucher_id: int) -> VoucherRow:
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
        "order_id": voucher.order_id,
        "refunded_at": None if voucher.refunded_at is None else voucher.refunded_at.isoformat(),
    }
    if for_holder:
        code = codes.code_for(secret_key, voucher.nonce)
        key = codes.merchant_voucher_key(secret_key, voucher.merchant_id)
        view["code"] = codes.display_code(code)
        view["qr_payload"] = codes.qr_payload(key, voucher.id, voucher.merchant_id, voucher.expires_at, code)
        view["qr_svg_url"] = f"/v1/me/vouchers/{voucher.id}/qr.svg"
        view["qr_png_url"] = f"/v1/me/vouchers/{voucher.id}/qr.png"
    return view
