"""A merchant's insights: its funnel per deal and per bucket over local dates, k-anonymous, with money.

Numbers (docs/insights.md): users are distinct users with any impression, click, claim or
redemption; impressions are unique user-days (a user shown the deal three times on a day
counts once, as Google Business Profile counts them; in an hour, area or source bucket, once
per day in that bucket); clicks, claims and redemptions are events. Revenue is what the
redeemed vouchers sold for (vouchers.price_minor, the price the user was promised, even if
the deal's price changed since), the discount is the deal's list price minus that.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.errors import InvalidParameter, NotFound
from lbs.models import Deal, Review
from lbs.services.deal_schedule import DAYS
from lbs.services.insight_sets import DistinctCounter, Ids
from lbs.services.insights_anonymity import K, hidden_groups, too_few
from lbs.services.insights_attribution import zone
from lbs.services.insights_rollup import DayRow, rows_in_range
from lbs.services.insights_uplift import uplift
from lbs.services.merchants import get_merchant

By = Literal["day", "hour", "weekday", "area", "source"]
DEFAULT_DAYS = 28
MAX_DAYS = 366
SOURCE_ORDER = ("nearby", "map", "deal_page", "merchant_page", "unknown")


@dataclass(frozen=True)
class InsightsQuery:
    first: date | None = None
    last: date | None = None
    deal_id: int | None = None
    by: By = "day"
    uplift: bool = False


@dataclass
class _Sum:
    parts: list[Ids]  # the users of each day summed
    users: int  # distinct among them
    impressions: int = 0
    clicks: int = 0
    claims: int = 0
    redemptions: int = 0
    revenue_minor: int = 0
    discount_minor: int = 0
    reviews: int | None = 0


def _sum(rows: Iterable[DayRow], counter: DistinctCounter) -> _Sum:
    listed = list(rows)
    parts = [r.users() for r in listed]
    total = _Sum(parts, counter.count(parts))
    for r in listed:
        total.impressions += r.impressions
        total.clicks += r.clicks
        total.claims += r.claims
        total.redemptions += r.redemptions
        total.revenue_minor += r.revenue_minor
        total.discount_minor += r.discount_minor
    return total


def _review_counts(
    session: Session, merchant_id: int, tz: ZoneInfo, first: date, last: date
) -> dict[tuple[int, date], int]:
    """Reviews written per (deal, local day) from ``first`` to ``last``: few rows (one per
    redeemed voucher at most), so read and placed in days here rather than rolled up."""
    start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    counts: dict[tuple[int, date], int] = defaultdict(int)
    for deal_id, at in session.execute(
        select(Review.deal_id, Review.created_at).where(
            Review.merchant_id == merchant_id, Review.created_at >= start, Review.created_at < end
        )
    ):
        counts[deal_id, at.astimezone(tz).date()] += 1
    return counts


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(UTC)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def metrics(s: _Sum, hidden: bool, money: bool) -> dict[str, Any]:
    """The Metrics of a group: all null when hidden; money null unless ``money``."""
    if hidden:
        return {
            "suppressed": True,
            "users": None,
            "impressions": None,
            "clicks": None,
            "claims": None,
            "redemptions": None,
            "reviews": None,
            "conversion": {"click_through": None, "claim_rate": None, "redemption_rate": None},
            "revenue_minor": None,
            "discount_minor": None,
            "roi": None,
        }
    return {
        "suppressed": False,
        "users": s.users,
        "impressions": s.impressions,
        "clicks": s.clicks,
        "claims": s.claims,
        "redemptions": s.redemptions,
        "reviews": s.reviews,
        "conversion": {
            "click_through": _ratio(s.clicks, s.impressions),
            "claim_rate": _ratio(s.claims, s.clicks),
            "redemption_rate": _ratio(s.redemptions, s.claims),
        },
        "revenue_minor": s.revenue_minor if money else None,
        "discount_minor": s.discount_minor if money else None,
        "roi": _ratio(s.revenue_minor - s.discount_minor, s.discount_minor) if money else None,
    }


def date_range(query: InsightsQuery, today: date) -> tuple[date, date]:
    """The query's local dates, inclusive: by default the 28 days to today."""
    last = query.last or (today if query.first is None else min(today, query.first + timedelta(MAX_DAYS - 1)))
    first = query.first or last - timedelta(DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidParameter("from", f"from ({first}) is after to ({last})")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidParameter(
            "to", f"at most {MAX_DAYS} days from `from` to `to` (inclusive); asked {(last - first).days + 1}"
        )
    return first, last


def merchant_insights(
    session: Session, merchant_id: int, query: InsightsQuery, now: datetime
) -> dict[str, Any]:
    merchant = get_merchant(session, merchant_id)
    tz = zone(merchant.timezone)
    first, last = date_range(query, now.astimezone(tz).date())
    all_deals = list(session.scalars(select(Deal).where(Deal.merchant_id == merchant_id).order_by(Deal.id)))
    deals = all_deals
    if query.deal_id is not None:
        deals = [d for d in all_deals if d.id == query.deal_id]
        if not deals:
            raise NotFound(f"merchant {merchant_id} has no deal {query.deal_id}")
    scope = 0 if query.deal_id is None else query.deal_id
    currencies = {d.currency for d in deals}
    currency = currencies.pop() if len(currencies) == 1 else None
    dim = query.by if query.by in ("hour", "area", "source") else "total"
    wanted = [("total", sorted({scope, *(d.id for d in deals)}))]
    if dim != "total":
        wanted.append((dim, [scope]))
    rows = rows_in_range(session, merchant_id, wanted, first, last)
    counter = DistinctCounter()
    listed = {d.id for d in deals}
    by_day = query.by in ("day", "weekday")
    reviews_of: dict[int, int] = defaultdict(int)  # per deal
    reviews_in: dict[str, int] = defaultdict(int)  # per day or weekday, of the deals listed
    for (deal_id, day), n in _review_counts(session, merchant_id, tz, first, last).items():
        reviews_of[deal_id] += n
        if by_day and deal_id in listed:
            reviews_in[_day_key(query.by, day)] += n
    grouped: dict[tuple[str, int], list[DayRow]] = defaultdict(list)
    for r in rows:
        grouped[r.dim, r.deal_id].append(r)
    total_rows = grouped["total", scope]
    total = _sum(total_rows, counter)
    total.reviews = sum(reviews_of[d] for d in listed)
    deal_sums = []
    for deal in deals:
        deal_sums.append(_sum(grouped["total", deal.id], counter))
        deal_sums[-1].reviews = reviews_of[deal.id]
    keys, bucket_sums = _buckets(query.by, total_rows, grouped[dim, scope], first, last, counter)
    for key, s in zip(keys, bucket_sums, strict=True):
        s.reviews = reviews_in[key] if by_day else None  # not placed in hours, areas or sources

    def together(groups: list[_Sum]) -> Callable[[list[int]], int]:
        return lambda indexes: counter.count(p for i in indexes for p in groups[i].parts)

    total_hidden = too_few(total.users)
    hidden_deals = hidden_groups(total.users, [s.users for s in deal_sums], together(deal_sums))
    hidden_buckets = hidden_groups(total.users, [s.users for s in bucket_sums], together(bucket_sums))
    return {
        "merchant_id": merchant_id,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": merchant.timezone,
        "by": query.by,
        "k": K,
        "currency": currency,
        "total": metrics(total, total_hidden, currency is not None),
        "deals": [
            {"deal_id": d.id, "title": d.title, "currency": d.currency, **metrics(s, h, True)}
            for d, s, h in zip(deals, deal_sums, hidden_deals, strict=True)
        ],
        "buckets": [
            {"key": key, **metrics(s, h, currency is not None)}
            for key, s, h in zip(keys, bucket_sums, hidden_buckets, strict=True)
        ],
        "uplift": uplift(session, merchant_id, tz, deals, now) if query.uplift else [],
    }


def _day_key(by: str, day: date) -> str:
    return day.isoformat() if by == "day" else DAYS[day.weekday()]


def _buckets(
    by: By,
    total_rows: Sequence[DayRow],
    dim_rows: Sequence[DayRow],
    first: date,
    last: date,
    counter: DistinctCounter,
) -> tuple[list[str], list[_Sum]]:
    """The partition's keys in order and their sums: every day, weekday and hour (empty ones
    too, for charts); the areas and sources that have events."""
    grouped: dict[str, list[DayRow]] = defaultdict(list)
    if by in ("day", "weekday"):
        for r in total_rows:
            grouped[_day_key(by, r.local_day)].append(r)
        if by == "day":
            keys = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        else:
            keys = list(DAYS)
    else:
        for r in dim_rows:
            grouped[r.key].append(r)
        if by == "hour":
            keys = [str(h) for h in range(24)]
        elif by == "source":
            keys = [s for s in SOURCE_ORDER if s in grouped]
        else:
            keys = sorted(grouped, key=lambda k: (k == "unknown", k))
    return keys, [_sum(grouped.get(k, ()), counter) for k in keys]
