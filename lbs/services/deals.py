"""Deals, as their merchant manages them: validated fields, creation, safe edits, transitions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Literal

from iso4217 import Currency
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.errors import FieldFrozen, InvalidParameter, InvalidTransition, NotFound
from lbs.models import Deal, Merchant
from lbs.services.deal_offers import DealAt
from lbs.services.deal_schedule import DAYS, MINUTES_PER_DAY, Instant, parse_hhmm
from lbs.services.request_bodies import JsonBody, PartialUpdate, refuse_null
from lbs.text import MultilineText, PlainText

Kind = Literal["percent_off", "fixed_price", "cash_voucher"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_VALIDITY = timedelta(days=366)
MAX_PRICE_MINOR = 10**10
# Once a deal has claims these would change what its holders were promised.
FROZEN_ONCE_CLAIMED = ("kind", "currency", "list_price_minor", "deal_price_minor", "valid_from",
                       "redeem_within_minutes", "payment", "refund_policy")  # fmt: skip
Payment = Literal["prepaid", "at_counter"]
RefundPolicy = Literal["anytime", "none"]
PAYMENT_DOC = (
    "prepaid: claimed by paying deal_price_minor online (POST /v1/deals/{id}/orders), where this "
    "server takes payments; at_counter: claimed free, the price paid at the counter. Default: "
    "prepaid when the server takes payments and deal_price_minor is above 0, else at_counter"
)
REFUND_DOC = "prepaid deals: anytime refunds an unused voucher on request and when it expires; none never"


def _iso_4217(code: str) -> str:
    try:
        Currency(code)
    except ValueError:
        raise ValueError("not an ISO 4217 currency code (e.g. EUR, USD, JPY)") from None
    return code


CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(_iso_4217)]
HHMM = Annotated[str, Field(pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$", description="HH:MM, local time")]


class DealWindow(BaseModel):
    """Listed days (the day a window starts) from start to end, local; an earlier end is the next day."""

    model_config = ConfigDict(extra="forbid")

    days: list[Day] = Field(min_length=1, max_length=7, json_schema_extra={"uniqueItems": True})
    start: HHMM
    end: HHMM

    @field_validator("days")
    @classmethod
    def _no_repeats(cls, days: list[str]) -> list[str]:
        if len(set(days)) != len(days):
            raise ValueError("a day is listed twice")
        return sorted(days, key=DAYS.index)

    @field_validator("start")
    @classmethod
    def _start_in_day(cls, start: str) -> str:
        if parse_hhmm(start) >= MINUTES_PER_DAY:
            raise ValueError("start must be 00:00 to 23:59")
        return start

    @field_validator("end")
    @classmethod
    def _end_differs(cls, end: str, info: ValidationInfo) -> str:
        minutes = parse_hhmm(end)
        if minutes == 0:
            raise ValueError("end must be 00:01 to 24:00 (24:00 is midnight at the end of the day)")
        if "start" in info.data and minutes == parse_hhmm(info.data["start"]):
            raise ValueError("end equals start; for all day use 00:00 to 24:00")
        return end


Windows = Annotated[list[DealWindow], Field(max_length=14)]


class DealFields(JsonBody):
    """A new deal. Prices are integer minor units (cents) of an ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: PlainText = Field(min_length=1, max_length=120)
    description: MultilineText | None = Field(None, max_length=2000, description="line breaks kept, as \\n")
    kind: Kind
    currency: CurrencyCode
    list_price_minor: int = Field(ge=1, le=MAX_PRICE_MINOR)
    deal_price_minor: int = Field(ge=0, le=MAX_PRICE_MINOR, description="less than list_price_minor")
    quantity_total: int | None = Field(None, ge=1, le=1_000_000, description="null: unlimited")
    per_user_limit: int = Field(1, ge=1, le=100)
    valid_from: Instant
    valid_until: Instant = Field(description="after valid_from, at most 366 days later")
    windows: Windows = Field(default_factory=list, description="empty: all day")
    redeem_within_minutes: int | None = Field(None, ge=1, le=525_600)
    payment: Payment | None = Field(None, description=PAYMENT_DOC)
    refund_policy: RefundPolicy = Field("anytime", description=REFUND_DOC)
    publish: bool = False

    @field_validator("deal_price_minor")
    @classmethod
    def _a_discount(cls, price: int, info: ValidationInfo) -> int:
        listed = info.data.get("list_price_minor")
        if listed is not None and price >= listed:
            raise ValueError(f"must be less than list_price_minor ({listed})")
        return price

    @field_validator("valid_until")
    @classmethod
    def _after_start(cls, until: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("valid_from")
        if start is not None:
            _check_validity(start, until)
        return until


class DealChanges(PartialUpdate):
    """A partial update; cross-field rules are checked against the deal as it would become."""

    NEVER_NULL = (
        "title", "kind", "currency", "list_price_minor", "deal_price_minor", "per_user_limit",
        "valid_from", "valid_until", "windows", "payment", "refund_policy",
    )  # fmt: skip

    title: PlainText | None = Field(None, min_length=1, max_length=120)
    description: MultilineText | None = Field(None, max_length=2000)
    kind: Kind | None = None
    currency: CurrencyCode | None = None
    list_price_minor: int | None = Field(None, ge=1, le=MAX_PRICE_MINOR)
    deal_price_minor: int | None = Field(None, ge=0, le=MAX_PRICE_MINOR)
    quantity_total: int | None = Field(None, ge=1, le=1_000_000)
    per_user_limit: int | None = Field(None, ge=1, le=100)
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    windows: Windows | None = None
    redeem_within_minutes: int | None = Field(None, ge=1, le=525_600)
    payment: Payment | None = None
    refund_policy: RefundPolicy | None = None

    _never_null = field_validator(*NEVER_NULL)(refuse_null)


def _check_validity(start: datetime, until: datetime) -> None:
    if until <= start:
        raise ValueError("must be after valid_from")
    if until - start > MAX_VALIDITY:
        raise ValueError("must be at most 366 days after valid_from")


def _check_can_publish(session: Session, merchant_id: int, valid_until: datetime, now: datetime) -> None:
    status = session.execute(select(Merchant.status).where(Merchant.id == merchant_id)).scalar_one()
    if status != "active":
        raise InvalidTransition(f"the merchant is {status}; only an active merchant publishes deals")
    if valid_until <= now:
        raise InvalidParameter(
            "valid_until", "valid_until has passed; a published deal must end in the future"
        )


def _check_payment(payment: str, price_minor: int, takes_payments: bool) -> None:
    if payment != "prepaid":
        return
    if not takes_payments:
        raise InvalidParameter(
            "payment", "this server takes no payments (LBS_PAYMENT_PROVIDER): at_counter only"
        )
    if price_minor == 0:
        raise InvalidParameter("payment", "a free deal (deal_price_minor 0) is claimed free: at_counter")


def create_deal(
    session: Session, merchant_id: int, fields: DealFields, now: datetime, *, takes_payments: bool
) -> Deal:
    if fields.publish:
        _check_can_publish(session, merchant_id, fields.valid_until, now)
    payment = fields.payment
    if payment is None:
        payment = "prepaid" if takes_payments and fields.deal_price_minor > 0 else "at_counter"
    _check_payment(payment, fields.deal_price_minor, takes_payments)
    deal = Deal(
        merchant_id=merchant_id,
        **fields.model_dump(exclude={"publish", "payment"}),
        payment=payment,
        quantity_claimed=0,
        status="published" if fields.publish else "draft",
        created_at=now,
        updated_at=now,
    )
    session.add(deal)
    session.flush()
    return deal


def own_deal(session: Session, merchant_id: int, deal_id: int, *, lock: bool = False) -> Deal:
    """The merchant's deal; another merchant's is a 404 as if it did not exist."""
    query = select(Deal).where(Deal.id == deal_id, Deal.merchant_id == merchant_id)
    deal = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if deal is None:
        raise NotFound(f"you have no deal {deal_id}")
    return deal


def own_deals(session: Session, merchant_id: int) -> list[Deal]:
    return list(session.scalars(select(Deal).where(Deal.merchant_id == merchant_id).order_by(Deal.id)))


def update_deal(
    session: Session,
    merchant_id: int,
    deal_id: int,
    changes: DealChanges,
    now: datetime,
    *,
    takes_payments: bool,
) -> Deal:
    deal = own_deal(session, merchant_id, deal_id, lock=True)
    if deal.status == "ended":
        raise InvalidTransition("an ended deal cannot change; create a new one", status_now=deal.status)
    given = changes.model_dump(exclude_unset=True)
    if deal.quantity_claimed > 0:
        for name in FROZEN_ONCE_CLAIMED:
            if name in given and given[name] != getattr(deal, name):
                raise FieldFrozen(
                    f"{name} cannot change once the deal has claims ({deal.quantity_claimed})", field=name
                )
        if given.get("per_user_limit", deal.per_user_limit) < deal.per_user_limit:
            raise FieldFrozen(
                "per_user_limit can only go up once the deal has claims", field="per_user_limit"
            )
        if "valid_until" in given and given["valid_until"] < now:
            raise InvalidParameter("valid_until", "valid_until cannot move into the past once claimed")
    merged = {
        name: given.get(name, getattr(deal, name)) for name in DealFields.model_fields if name != "publish"
    }
    if merged["deal_price_minor"] >= merged["list_price_minor"]:
        raise InvalidParameter(
            "deal_price_minor",
            f"deal_price_minor must be less than list_price_minor ({merged['list_price_minor']})",
        )
    try:
        _check_validity(merged["valid_from"], merged["valid_until"])
    except ValueError as exc:
        raise InvalidParameter("valid_until", f"valid_until {exc}") from None
    if {"payment", "deal_price_minor"} & given.keys():  # a deal's other fields change with payments off
        _check_payment(merged["payment"], merged["deal_price_minor"], takes_payments)
    if merged["quantity_total"] is not None and merged["quantity_total"] < deal.quantity_claimed:
        raise InvalidParameter(
            "quantity_total", f"quantity_total cannot go below the {deal.quantity_claimed} already claimed"
        )
    for name, value in given.items():
        setattr(deal, name, value)
    deal.updated_at = now
    session.flush()
    return deal


Action = Literal["publish", "pause", "resume", "end"]
# action -> (stored statuses it applies to, the status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "publish": (("draft",), "published"),
    "pause": (("published",), "paused"),
    "resume": (("paused",), "published"),
    "end": (("published", "paused"), "ended"),
}


def change_status(session: Session, merchant_id: int, deal_id: int, action: Action, now: datetime) -> Deal:
    deal = own_deal(session, merchant_id, deal_id, lock=True)
    allowed, target = TRANSITIONS[action]
    if deal.status not in allowed:
        raise InvalidTransition(
            f"cannot {action} a deal that is {deal.status}; {action} applies to: {', '.join(allowed)}",
            status_now=deal.status,
        )
    if now >= deal.valid_until:
        raise InvalidTransition(
            f"cannot {action} a deal that expired at {deal.valid_until.isoformat()}",
            status_now=deal.status,
        )
    if action in ("publish", "resume"):
        _check_can_publish(session, merchant_id, deal.valid_until, now)
    deal.status = target
    if action == "end":
        deal.ended_at = now
    deal.updated_at = now
    session.flush()
    return deal


def as_owner_sees(session: Session, merchant_id: int, deals: Sequence[Deal], at: datetime) -> list[DealAt]:
    """The merchant's deals evaluated at ``at`` in its time zone (drafts included)."""
    tz = session.execute(select(Merchant.timezone).where(Merchant.id == merchant_id)).scalar_one()
    return [DealAt.of(deal, tz, at) for deal in deals]
