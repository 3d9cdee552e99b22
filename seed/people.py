"""Synthetic people and what they do, with a known truth behind it.

Each person has a home, often a workplace elsewhere, and a hidden taste for categories
(Dirichlet); each merchant has a hidden appeal (log-normal). How much a person likes a
merchant is taste * appeal * exp(-distance / ``distance_km``), over the merchants nearest
their home and their workplace. From that come, over ``days`` before ``now``:

- sessions: a results page of nearby merchants (nearer ones likelier), one impression
  per merchant shown, with the deal shown beside it when one is live;
- clicks on what was shown, likelier the more the person likes it;
- claims of a deal after a click, when the deal is inside one of its windows, once per
  person and deal, never beyond its stock;
- redemptions of some claims a little later, each with the visit it brought;
- reviews of some redemptions (``review_rate``) some days later, within REVIEW_WINDOW_DAYS
  and before ``now``, rated by how much the person likes the merchant (taste * appeal,
  distance aside) against the other merchants they know, with noise: stars that mean
  something, as a verified review's should;
- visits of their own, drawn by liking.

A recommender can be checked to recover the tastes. Deterministic for a seed; vectorised
(a few seconds for 100,000 people).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from lbs.categories import N_CATEGORIES
from lbs.geo.timezones import timezone_at
from lbs.models.events import EVENT_KINDS
from lbs.services.deal_schedule import Schedule
from lbs.services.events import coarse_cell
from seed.synthetic import DEAL_WINDOWS, SyntheticDeals

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

KIND = {kind: code for code, kind in enumerate(EVENT_KINDS)}
DAY_S = 86_400.0
# A redeemed voucher may be reviewed within this many days (the service's rule).
REVIEW_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Habits:
    """How people behave; the defaults give about 50 events per person per 30 days."""

    sessions_per_day: float = 0.12
    page_size: int = 10
    visits_per_day: float = 0.45
    click_rate: float = 0.6  # chance of clicking the merchant a person likes best, when shown
    deal_lift: float = 3.0  # a live deal shown beside a merchant makes a click this much likelier
    claim_rate: float = 0.5  # of clicks on a merchant whose deal is claimable then
    redeem_rate: float = 0.6  # of claims, within three hours (before the deal ends)
    taste_concentration: float = 0.3  # Dirichlet alpha: smaller, narrower tastes
    appeal_sigma: float = 0.75
    distance_km: float = 1.0
    neighbourhood: int = 48  # merchants near home, and near work, a person considers
    commuter_share: float = 0.75
    # Of redemptions, the share reviewed (when the review's day comes before ``now``): near
    # what review sites report for verified buyers asked once (a third), not the 1-5 % of
    # unprompted reviews, so that a demo merchant has a few.
    review_rate: float = 0.35
    review_delay_days: float = 2.0  # mean wait from redemption to review (exponential)
    review_noise: float = 0.7  # standard deviation, in stars, around the liking's stars


@dataclass(frozen=True)
class People:
    home_lat: FloatArray
    home_lon: FloatArray
    work_lat: FloatArray
    work_lon: FloatArray
    taste: FloatArray  # (people, categories), rows sum to 1: the hidden truth
    appeal: FloatArray  # (merchants,): the other hidden truth


@dataclass(frozen=True)
class Claims:
    """Vouchers: one per claim event."""

    person: IntArray
    deal: IntArray  # index into the SyntheticDeals
    claimed_at: FloatArray  # POSIX seconds
    redeemed_at: FloatArray  # NaN: not redeemed


@dataclass(frozen=True)
class Reviews:
    """At most one per redeemed claim (voucher), in time order."""

    claim: IntArray  # index into the Claims: the voucher reviewed (its person and deal)
    rating: IntArray  # 1..5 stars
    at: FloatArray  # POSIX seconds, within REVIEW_WINDOW_DAYS after the redemption, before now

    def __len__(self) -> int:
        return len(self.claim)


@dataclass(frozen=True)
class Events:
    """The event log, in time order; indices into the people, merchants, deals and claims."""

    kind: IntArray  # index into EVENT_KINDS
    person: IntArray
    merchant: IntArray
    deal: IntArray  # -1: none
    claim: IntArray  # -1: none
    cell: IntArray  # H3 cell of an impression's page; 0: none
    at: FloatArray  # POSIX seconds

    def __len__(self) -> int:
        return len(self.kind)


@dataclass(frozen=True)
class Behaviour:
    people: People
    claims: Claims
    events: Events
    reviews: Reviews


class _Plane:
    """Kilometres east and north of a reference point (equirectangular; a city is small)."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.kx = 111.320 * math.cos(math.radians(lat0))
        self.ky = 110.574

    def xy(self, lats: FloatArray, lons: FloatArray) -> FloatArray:
        return np.column_stack([(lons - self.lon0) * self.kx, (lats - self.lat0) * self.ky])

    def latlon(self, xy: FloatArray) -> tuple[FloatArray, FloatArray]:
        return self.lat0 + xy[:, 1] / self.ky, self.lon0 + xy[:, 0] / self.kx


def _draw_rows(weights: FloatArray, rows: IntArray, rng: np.random.Generator) -> IntArray:
    """For each entry of rows, a column drawn with probability proportional to weights[row]."""
    width = weights.shape[1]
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    flat = (cdf + np.arange(len(weights))[:, None]).ravel()
    picked = np.searchsorted(flat, rows + rng.random(len(rows)), side="right") - rows * width
    return np.minimum(picked, width - 1).astype(np.int64)


def _times(n: int, start: float, days: int, utc_offset_h: float, rng: np.random.Generator) -> FloatArray:
    """Instants on days drawn evenly, at waking local hours (07:00-22:00, most around 14:30)."""
    day = rng.integers(0, days, size=n)
    local_hour = 7.0 + 15.0 * rng.beta(2.0, 2.0, size=n)
    return start + day * DAY_S + (local_hour - utc_offset_h) * 3600.0


def _people(
    xy: FloatArray, n: int, habits: Habits, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Homes near a random merchant (merchants sit where people are), workplaces near another."""
    home = xy[rng.integers(len(xy), size=n)] + rng.normal(0.0, 0.4, size=(n, 2))
    commuter = rng.random(n) < habits.commuter_share
    work = np.where(commuter[:, None], xy[rng.integers(len(xy), size=n)] + rng.normal(0.0, 0.2, (n, 2)), home)
    taste = rng.dirichlet(np.full(N_CATEGORIES, habits.taste_concentration), size=n)
    return home, work, taste


def _claimable(deals: SyntheticDeals, deal: IntArray, at: FloatArray, tz: list[str]) -> BoolArray:
    """Whether each deal may be claimed at each instant (validity and windows), by its schedule."""
    schedules: dict[int, Schedule] = {}
    out = np.zeros(len(deal), dtype=bool)
    for k, (d, t) in enumerate(zip(deal.tolist(), at.tolist(), strict=True)):
        if not deals.valid_from[d] <= t < deals.valid_until[d]:
            continue
        if d not in schedules:
            schedules[d] = Schedule.of(
                datetime.fromtimestamp(deals.valid_from[d], UTC),
                datetime.fromtimestamp(deals.valid_until[d], UTC),
                DEAL_WINDOWS[int(deals.window[d])][1],
                tz[d],
            )
        out[k] = schedules[d].window_at(datetime.fromtimestamp(t, UTC)) is not None
    return out


def generate(
    lats: FloatArray,
    lons: FloatArray,
    categories: IntArray,
    deals: SyntheticDeals,
    n_people: int,
    days: int,
    now: datetime,
    seed: int,
    habits: Habits | None = None,
) -> Behaviour:
    """People around the given merchants (category codes) and ``days`` of their events."""
    habits = habits or Habits()
    rng = np.random.default_rng([seed, 2])
    plane = _Plane(float(np.mean(lats)), float(np.mean(lons)))
    xy = plane.xy(lats, lons)
    appeal = rng.lognormal(0.0, habits.appeal_sigma, size=len(xy))
    home, work, taste = _people(xy, n_people, habits, rng)

    # Each person's world: the merchants nearest home (columns [0, k)) and work ([k, 2k)).
    k = min(habits.neighbourhood, len(xy))
    tree = cKDTree(xy)
    d_home, i_home = tree.query(home, k=[*range(1, k + 1)])
    d_work, i_work = tree.query(work, k=[*range(1, k + 1)])
    pool = np.hstack([i_home, i_work]).astype(np.int64)
    liking = (
        taste[np.arange(n_people)[:, None], categories[pool]]
        * appeal[pool]
        * np.exp(-np.hstack([d_home, d_work]) / habits.distance_km)
    )
    best = liking.max(axis=1)

    end = now.timestamp()
    start = end - days * DAY_S
    tz_name = timezone_at(plane.lat0, plane.lon0)
    offset = ZoneInfo(tz_name).utcoffset(now)
    offset_h = offset.total_seconds() / 3600.0 if offset is not None else 0.0

    # Visits of their own.
    visitor = np.repeat(np.arange(n_people), rng.poisson(habits.visits_per_day * days, size=n_people))
    visited = pool[visitor, _draw_rows(liking, visitor, rng)]
    visit_at = _times(len(visitor), start, days, offset_h, rng)

    # Sessions: a page of the anchor's merchants, nearer ones likelier (Gumbel top-k).
    searcher = np.repeat(np.arange(n_people), rng.poisson(habits.sessions_per_day * days, size=n_people))
    n_sessions = len(searcher)
    session_at = _times(n_sessions, start, days, offset_h, rng)
    at_work = rng.random(n_sessions) < 0.5
    size = min(habits.page_size, k)
    keys = -np.arange(k) / (k / 4) + rng.gumbel(size=(n_sessions, k))
    shown = np.argpartition(-keys, size - 1, axis=1)[:, :size] + np.where(at_work, k, 0)[:, None]
    home_lat, home_lon = plane.latlon(home)
    work_lat, work_lon = plane.latlon(work)
    cells = np.array(
        [
            [coarse_cell(a, b) for a, b in zip(home_lat.tolist(), home_lon.tolist(), strict=True)],
            [coarse_cell(a, b) for a, b in zip(work_lat.tolist(), work_lon.tolist(), strict=True)],
        ],
        dtype=np.int64,
    )
    seen_by = np.repeat(searcher, size)
    seen_col = shown.ravel()
    seen = pool[seen_by, seen_col]
    seen_at = np.repeat(session_at, size)
    seen_cell = np.repeat(cells[at_work.astype(np.int64), searcher], size)
    deal_of = np.full(len(xy), -1, dtype=np.int64)
    deal_of[deals.merchants] = np.arange(len(deals.merchants))
    seen_deal = deal_of[seen]
    live = seen_deal >= 0
    live[live] = (deals.valid_from[seen_deal[live]] <= seen_at[live]) & (
        seen_at[live] < deals.valid_until[seen_deal[live]]
    )
    seen_deal = np.where(live, seen_deal, -1)

    # Clicks, then claims of claimable deals (once per person and deal, within stock).
    lift = np.where(seen_deal >= 0, habits.deal_lift, 1.0)
    clicked = rng.random(len(seen)) < habits.click_rate * lift * liking[seen_by, seen_col] / best[seen_by]
    click_at = seen_at[clicked] + rng.uniform(5.0, 120.0, size=int(clicked.sum()))
    c_person, c_merchant, c_deal = seen_by[clicked], seen[clicked], seen_deal[clicked]
    wants = (c_deal >= 0) & (rng.random(len(c_deal)) < habits.claim_rate)
    claim_at = click_at[wants] + rng.uniform(10.0, 90.0, size=int(wants.sum()))
    claim_person, claim_deal = c_person[wants], c_deal[wants]
    merchant_tz = {int(m): timezone_at(float(lats[m]), float(lons[m])) for m in np.unique(deals.merchants)}
    tz = [merchant_tz[int(m)] for m in deals.merchants]
    ok = _claimable(deals, claim_deal, claim_at, tz) & (claim_at < end)
    order = np.argsort(claim_at, kind="stable")
    order = order[ok[order]]
    _, first = np.unique(claim_person[order] * len(deals.merchants) + claim_deal[order], return_index=True)
    order = order[np.sort(first)]  # each person's first claim of a deal, still in time order
    rank = _rank_within(claim_deal[order])
    stock = deals.quantity[claim_deal[order]]
    order = order[(stock == 0) | (rank < stock)]
    claims_person, claims_deal, claimed_at = claim_person[order], claim_deal[order], claim_at[order]
    redeem_at = claimed_at + rng.uniform(600.0, 3 * 3600.0, size=len(order))
    redeemed = (rng.random(len(order)) < habits.redeem_rate) & (redeem_at < end)
    redeemed &= redeem_at < deals.valid_until[claims_deal]
    redeemed_at = np.where(redeemed, redeem_at, np.nan)

    n_claims = len(order)
    red = np.flatnonzero(redeemed)
    claim_merchant = deals.merchants[claims_deal]
    parts = [
        # kind, person, merchant, deal, claim, cell, at
        (KIND["visit"], visitor, visited, None, None, None, visit_at),
        (KIND["impression"], seen_by, seen, seen_deal, None, seen_cell, seen_at),
        (KIND["click"], c_person, c_merchant, c_deal, None, None, click_at),
        (KIND["claim"], claims_person, claim_merchant, claims_deal, np.arange(n_claims), None, claimed_at),
        (
            KIND["redemption"],
            claims_person[red],
            claim_merchant[red],
            claims_deal[red],
            red,
            None,
            redeem_at[red],
        ),
        (KIND["visit"], claims_person[red], claim_merchant[red], None, None, None, redeem_at[red] + 60.0),
    ]
    events = _concatenate(parts)
    claims = Claims(claims_person, claims_deal, claimed_at, redeemed_at)
    review_rng = np.random.default_rng([seed, 3])  # its own stream: the events stay as they were
    reviews = _reviews(claims, pool, taste, appeal, categories, deals.merchants, end, habits, review_rng)
    return Behaviour(People(home_lat, home_lon, work_lat, work_lon, taste, appeal), claims, events, reviews)


def _reviews(
    claims: Claims,
    pool: IntArray,
    taste: FloatArray,
    appeal: FloatArray,
    categories: IntArray,
    deal_merchants: IntArray,
    end: float,
    habits: Habits,
    rng: np.random.Generator,
) -> Reviews:
    """Reviews of a ``review_rate`` share of the redeemed claims, each written some days after
    its redemption (dropped when that is past ``end`` or the window). The stars: 1 + 4 x the
    share of the person's merchants (their ``pool``) they like less than this one, by taste x
    appeal (distance brought them there; it is not the merchant's doing), plus normal noise,
    rounded and clipped to 1..5."""
    redeemed = np.flatnonzero(~np.isnan(claims.redeemed_at))
    writes = rng.random(len(redeemed)) < habits.review_rate
    delay = 600.0 + rng.exponential(habits.review_delay_days * DAY_S, size=len(redeemed))
    noise = rng.normal(0.0, habits.review_noise, size=len(redeemed))
    at = claims.redeemed_at[redeemed] + delay
    keep = writes & (delay <= REVIEW_WINDOW_DAYS * DAY_S) & (at < end)
    claim, at, noise = redeemed[keep], at[keep], noise[keep]
    person = claims.person[claim]
    merchant = deal_merchants[claims.deal[claim]]
    known = pool[person]
    quality = taste[person[:, None], categories[known]] * appeal[known]
    # A claim's merchant was shown to the person, so it is in their pool.
    own = quality[np.arange(len(claim)), np.argmax(known == merchant[:, None], axis=1)]
    below = (quality < own[:, None]).mean(axis=1)
    rating = np.clip(np.rint(1.0 + 4.0 * below + noise), 1, 5).astype(np.int64)
    order = np.argsort(at, kind="stable")
    return Reviews(claim[order], rating[order], np.floor(at[order] * 1000.0) / 1000.0)


def _rank_within(groups: IntArray) -> IntArray:
    """0, 1, 2, ... counting each value's earlier occurrences in the array."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    counts = np.diff(np.r_[starts, len(groups)])
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(groups)) - np.repeat(starts, counts)
    return ranks


def _concatenate(
    parts: list[
        tuple[int, IntArray, IntArray, IntArray | None, IntArray | None, IntArray | None, FloatArray]
    ],
) -> Events:
    def column(i: int) -> IntArray:
        return np.concatenate(
            [np.full(len(p[1]), -1 if i in (3, 4) else 0, np.int64) if p[i] is None else p[i] for p in parts]
        ).astype(np.int64)

    at = np.concatenate([p[6] for p in parts])
    order = np.argsort(at, kind="stable")
    kind = np.concatenate([np.full(len(p[1]), p[0], np.int64) for p in parts])
    return Events(
        kind=kind[order],
        person=column(1)[order],
        merchant=column(2)[order],
        deal=column(3)[order],
        claim=column(4)[order],
        cell=column(5)[order],
        at=np.floor(at[order] * 1000.0) / 1000.0,
    )
