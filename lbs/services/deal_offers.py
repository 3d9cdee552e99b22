"""Deals as users see them: a deal at an instant, each merchant's best offer, offers near a point."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from lbs.db import IN_CHUNK
from lbs.errors import NotFound
from lbs.geo.distance import EARTH_RADIUS_M, chord2_to, latlng_to_xyz, m_to_chord2, point_to_xyz
from lbs.models import Deal, Merchant
from lbs.services.deal_schedule import DealState, Occurrence, Schedule, deal_state, unclaimable_reason


class DealRecord(NamedTuple):
    """The columns of a deal that DealAt and deal_summary read, as the deal book makes them
    from its arrays: a tuple is made in about a twentieth of the time of an ORM Deal."""

    id: int
    merchant_id: int
    title: str
    kind: str
    currency: str
    list_price_minor: int
    deal_price_minor: int
    quantity_total: int | None
    quantity_claimed: int
    valid_from: datetime
    valid_until: datetime
    ended_at: datetime | None
    windows: Any
    status: str
    payment: str
    refund_policy: str


D = TypeVar("D", Deal, DealRecord)


@dataclass(frozen=True)
class DealAt(Generic[D]):
    """A deal evaluated at one instant, in its merchant's time zone."""

    deal: D
    tz: ZoneInfo
    at: datetime
    state: DealState
    window_now: Occurrence | None
    window_next: Occurrence | None
    merchant_name: str = ""  # filled where the query had it at hand (public_deal)

    @classmethod
    def of(cls, deal: D, tz_name: str, at: datetime, merchant_name: str = "") -> DealAt[D]:
        state = deal_state(
            deal.status, deal.valid_from, deal.valid_until, deal.ended_at,
            deal.quantity_total, deal.quantity_claimed, at,
        )  # fmt: skip
        now = nxt = None
        if state in (DealState.LIVE, DealState.SCHEDULED, DealState.SOLD_OUT, DealState.PAUSED):
            schedule = Schedule.of(deal.valid_from, deal.valid_until, deal.windows, tz_name)
            now = schedule.window_at(at)
            nxt = None if now is not None else schedule.next_window(at)
        return cls(deal, ZoneInfo(tz_name), at, state, now, nxt, merchant_name)

    @property
    def unclaimable_reason(self) -> str | None:
        return unclaimable_reason(self.state, self.window_now)

    @property
    def claimable(self) -> bool:
        return self.unclaimable_reason is None

    @property
    def ends_at(self) -> datetime | None:
        """When claiming stops: the end of the current window (already cut at valid_until)."""
        return self.window_now.ends_at if self.window_now is not None else None

    @property
    def discount(self) -> float:
        return 1.0 - self.deal.deal_price_minor / self.deal.list_price_minor

    def local(self, instant: datetime | None) -> str | None:
        return None if instant is None else instant.astimezone(self.tz).isoformat()

    def window(self) -> dict[str, Any] | None:
        span, state = (self.window_now, "now") if self.window_now is not None else (self.window_next, "next")
        if span is None:
            return None
        return {"state": state, "starts_at": self.local(span.starts_at), "ends_at": self.local(span.ends_at)}


def stock_left(deal: Deal | DealRecord) -> int | None:
    return None if deal.quantity_total is None else deal.quantity_total - deal.quantity_claimed


def deal_summary(offer: DealAt) -> dict[str, Any]:
    """What a nearby result says about a deal."""
    deal = offer.deal
    return {
        "id": deal.id,
        "title": deal.title,
        "kind": deal.kind,
        "currency": deal.currency,
        "list_price_minor": deal.list_price_minor,
        "deal_price_minor": deal.deal_price_minor,
        "discount_pct": round(100 * offer.discount),
        "ends_at": offer.local(offer.ends_at),
        "stock_left": stock_left(deal),
        "window": offer.window(),
        "payment": deal.payment,
        "refund_policy": deal.refund_policy,
    }


def deal_view(offer: DealAt[Deal]) -> dict[str, Any]:
    """The full deal, for its merchant and for its public page (read from the database)."""
    deal = offer.deal
    return {
        **deal_summary(offer),
        "merchant_id": deal.merchant_id,
        "description": deal.description,
        "quantity_total": deal.quantity_total,
        "quantity_claimed": deal.quantity_claimed,
        "per_user_limit": deal.per_user_limit,
        "valid_from": offer.local(deal.valid_from),
        "valid_until": offer.local(deal.valid_until),
        "windows": deal.windows,
        "redeem_within_minutes": deal.redeem_within_minutes,
        "status": deal.status,
        "state": offer.state.value,
        "ended_at": offer.local(deal.ended_at),
        "created_at": deal.created_at.isoformat(),
        "updated_at": deal.updated_at.isoformat(),
    }


def _not_over(at: datetime) -> ColumnElement[bool]:
    """Published, not ended or past, at an active merchant (a closed shop sells nothing)."""
    return and_(
        Merchant.status == "active",
        Deal.status == "published",
        Deal.valid_until > at,
        or_(Deal.ended_at.is_(None), Deal.ended_at > at),
    )


def public_deal(session: Session, deal_id: int, at: datetime) -> DealAt[Deal]:
    """A deal anyone may see: published at some point, at an active merchant (else a 404)."""
    row = session.execute(
        select(Deal, Merchant.timezone, Merchant.name)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .where(Deal.id == deal_id, Deal.status != "draft", Merchant.status == "active")
    ).one_or_none()
    if row is None:
        raise NotFound(f"no deal {deal_id}")
    return DealAt.of(row[0], row[1], at, row[2])


def merchant_offers(session: Session, merchant_id: int, at: datetime) -> list[DealAt]:
    """A merchant's published deals that are not over at ``at``, claimable ones first."""
    rows = session.execute(
        select(Deal, Merchant.timezone)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .where(Deal.merchant_id == merchant_id, _not_over(at))
        .order_by(Deal.id)
    ).all()
    offers = [DealAt.of(deal, tz, at) for deal, tz in rows]
    return sorted(offers, key=lambda o: (not o.claimable, -o.discount, o.deal.id))


def _best(offers: Iterable[DealAt]) -> DealAt | None:
    """Largest discount, then the soonest end, then the lowest id."""
    return min(offers, key=lambda o: (-o.discount, o.ends_at or o.deal.valid_until, o.deal.id), default=None)


@dataclass(frozen=True)
class MerchantOffer:
    now: DealAt | None  # the best deal claimable at the instant asked
    next: DealAt | None  # when none is: the deal whose window opens first


def merchants_with_deals(
    session: Session, at: datetime, among: Sequence[int] | npt.NDArray[np.int64], *, started: bool = False
) -> list[int]:
    """The merchants with a deal not over at ``at`` (claimable then or later), at least all
    of those among ``among`` (when that is long, every one: the caller intersects); with
    ``started``, only deals whose validity has begun (their windows aside)."""
    query = select(Deal.merchant_id).join(Merchant, Merchant.id == Deal.merchant_id).where(_not_over(at))
    if started:
        query = query.where(Deal.valid_from <= at)
    if len(among) <= IN_CHUNK:
        query = query.where(Deal.merchant_id.in_([int(m) for m in among]))
    return list(session.execute(query.distinct()).scalars())


def best_offers(session: Session, merchant_ids: Sequence[int], at: datetime) -> dict[int, MerchantOffer]:
    """For each merchant with a deal not over at ``at``: its best claimable deal, or the next one."""
    if not merchant_ids:
        return {}
    rows = session.execute(
        select(Deal, Merchant.timezone)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .where(Deal.merchant_id.in_(merchant_ids), _not_over(at))
    ).all()
    by_merchant: dict[int, list[DealAt]] = {}
    for deal, tz in rows:
        by_merchant.setdefault(deal.merchant_id, []).append(DealAt.of(deal, tz, at))
    return {merchant_id: merchant_offer(offers) for merchant_id, offers in by_merchant.items()}


def merchant_offer(offers: Sequence[DealAt]) -> MerchantOffer:
    """A merchant's best claimable deal among ``offers`` (not over), or the one whose window opens first."""
    now = _best(o for o in offers if o.claimable)
    upcoming = [
        (o.window_next.starts_at, o.deal.id, o)
        for o in offers
        if o.state in (DealState.LIVE, DealState.SCHEDULED) and o.window_next is not None
    ]
    nxt = min(upcoming, key=lambda u: (u[0], u[1]))[2] if now is None and upcoming else None
    return MerchantOffer(now, nxt)


@dataclass(frozen=True)
class NearOffer:
    merchant_id: int
    chord2: float  # to the query point, computed as the nearby index does
    offer: DealAt


def _box(lat: float, lon: float, radius_m: float) -> ColumnElement[bool]:
    """A latitude/longitude box holding the circle; the exact test follows in Python."""
    angle = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(angle) + 1e-9
    where = Merchant.lat.between(lat - dlat, lat + dlat)
    cos_lat = math.cos(math.radians(abs(lat) + math.degrees(angle)))
    if abs(lat) + math.degrees(angle) >= 89.0 or math.sin(angle) >= cos_lat:
        return where  # near a pole every longitude may be in reach
    dlon = math.degrees(math.asin(math.sin(angle) / cos_lat)) + 1e-9
    west, east = lon - dlon, lon + dlon
    if west < -180:
        return and_(where, or_(Merchant.lon >= west + 360, Merchant.lon <= east))
    if east > 180:
        return and_(where, or_(Merchant.lon >= west, Merchant.lon <= east - 360))
    return and_(where, Merchant.lon.between(west, east))


def offers_near(
    session: Session,
    lat: float,
    lon: float,
    radius_m: float,
    at: datetime,
    categories: Sequence[str] | None = None,
) -> list[NearOffer]:
    """Active merchants within the radius that have a deal claimable at ``at``, with their best deal."""
    query = (
        select(Deal, Merchant.timezone, Merchant.lat, Merchant.lon)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .where(
            _not_over(at),
            Deal.valid_from <= at,
            or_(Deal.quantity_total.is_(None), Deal.quantity_claimed < Deal.quantity_total),
            _box(lat, lon, radius_m),
        )
    )
    if categories is not None:
        query = query.where(Merchant.category.in_(categories))
    rows = session.execute(query).all()
    if not rows:
        return []
    xyz = latlng_to_xyz([r[2] for r in rows], [r[3] for r in rows])
    c2 = chord2_to(xyz, point_to_xyz(lat, lon))
    max_c2 = m_to_chord2(radius_m)
    by_merchant: dict[int, tuple[float, list[DealAt]]] = {}
    for (deal, tz, _lat, _lon), chord2 in zip(rows, c2.tolist(), strict=True):
        if chord2 <= max_c2:
            offer = DealAt.of(deal, tz, at)
            if offer.claimable:
                by_merchant.setdefault(deal.merchant_id, (chord2, []))[1].append(offer)
    return [
        NearOffer(merchant_id, chord2, best)
        for merchant_id, (chord2, offers) in by_merchant.items()
        if (best := _best(offers)) is not None
    ]
