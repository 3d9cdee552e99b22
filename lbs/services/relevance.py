"""sort=relevance: the nearest candidates re-ranked by the recommender, with reasons.

A worker holds the newest trained model (ModelHolder) and checks the model directory's
CURRENT pointer at most every ``model_reload_s`` seconds: a model that `lbs train` wrote
is in use everywhere within that delay, without a restart. Until a first model exists,
relevance is distance.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.categories import in_words
from lbs.models import Event
from lbs.services.deal_book import BestDeals, micros
from lbs.services.deal_offers import DealAt, MerchantOffer
from recommender import artifact
from recommender.exploration import interleave
from recommender.features import History
from recommender.model import Model, Scored
from recommender.training import VISIT_KINDS

log = logging.getLogger(__name__)

# The nearest this many are re-ranked; farther results follow in distance order.
RERANK_CANDIDATES = 500
# The most recent visits of a user that ranking reads.
HISTORY_VISITS = 1000
# Thresholds of the reasons shown (not of the ranking).
POPULAR_QUANTILE = 0.9
NEXT_SHARE = 0.05
BUSY_HOUR_SHARE = 1.5  # x the venue's average hour
# A deal's lift grows when it ends within this, or when this share of its stock is left.
ENDING_SOON = timedelta(hours=3)
SCARCE_SHARE = 0.1
# The user stands at their last visit when it is this close (the evaluation's "origin").
ORIGIN_M = 200.0
# Reasons are in English whatever the process's locale (strftime's %b follows it).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ModelHolder:
    """The newest model of a directory, re-read when its CURRENT pointer changes; only a
    model trained on this database (``database_id`` reads its id) is used: one of another
    database is refused, logged and reported (``problem``, shown by /readyz), and ranking
    goes on with the model held before, else without one (distance)."""

    def __init__(
        self,
        directory: Path | None,
        reload_s: float,
        database_id: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.reload_s = reload_s
        self._read_database_id = database_id
        self._clock = clock
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._path: Path | None = None
        self._refused: Path | None = None
        self._checked_at = float("-inf")
        self._popular_at = 0.0
        self.problem: str | None = None  # why CURRENT's model is not the one in use

    def get(self) -> Model | None:
        if self.directory is None:
            return None
        if self._clock() - self._checked_at >= self.reload_s and self._lock.acquire(blocking=False):
            try:  # one thread checks; the others keep the model they have meanwhile
                self._checked_at = self._clock()
                path = artifact.current(self.directory)
                if path is not None and path not in (self._path, self._refused):
                    self._load(path)
            finally:
                self._lock.release()
        return self._model

    def _load(self, path: Path) -> None:
        # Read again for each new model, not once per process: the database may have been
        # reset or restored under a running server (`lbs demo --reset`), taking a new id.
        try:
            database_id = self._read_database_id()
        except Exception as exc:  # the model waits for the database; the request goes on
            log.warning("model %s not loaded yet: this database's id unreadable (%s)", path.name, exc)
            return
        try:
            model = artifact.load(path, database_id)
        except artifact.ForeignModel as exc:
            self._refused, self.problem = path, f"refused: {exc}"
            kept = "the previous model" if self._model is not None else "no model (distance order)"
            log.error("model refused, ranking with %s: %s", kept, exc)
            return
        except artifact.ArtifactError as exc:
            self.problem = f"not loaded: {exc}"
            log.error("model not loaded, keeping the previous one: %s", exc)
            return
        known = model.signals.popularity[model.signals.popularity > 0]
        self._popular_at = float(np.quantile(known, POPULAR_QUANTILE)) if len(known) else np.inf
        self._model, self._path, self._refused, self.problem = model, path, None, None
        log.info("model %s loaded", model.meta.get("version"))

    @property
    def popular_at(self) -> float:
        """Visits from which a merchant is called popular (the top tenth)."""
        return self._popular_at


def user_history(session: Session, user_id: int, before: datetime | None) -> tuple[list[float], list[int]]:
    """The user's most recent visits (visit and redemption events) before ``before`` (None:
    whenever), oldest first."""
    rows = session.execute(
        select(Event.occurred_at, Event.merchant_id)
        .where(
            Event.user_id == user_id,
            Event.kind.in_(VISIT_KINDS),
            Event.merchant_id.is_not(None),
            *([] if before is None else [Event.occurred_at < before]),
        )
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(HISTORY_VISITS)
    ).all()
    latest_last = rows[::-1]
    return [r[0].timestamp() for r in latest_last], [int(r[1] or 0) for r in latest_last]


@dataclass(frozen=True)
class Ranked:
    order: npt.NDArray[np.int64]  # positions into the candidates, best first
    scored: Scored
    fresh: npt.NDArray[np.bool_]  # merchants the model has no history for


def deal_boosts(best: BestDeals, n: int, weight: float, now: datetime) -> npt.NDArray[np.float64]:
    """What a claimable deal adds to each of ``n`` candidates' scores: ``weight`` x (0.5 + its
    discount share, + 0.25 if it ends within ENDING_SOON, + 0.25 if SCARCE_SHARE or less of
    its stock is left); candidates without one get 0."""
    lift = 0.5 + np.clip(best.discount, 0.0, 1.0)
    lift += np.where(best.ends_us - micros(now) <= ENDING_SOON // timedelta(microseconds=1), 0.25, 0.0)
    limited = best.total > 0
    lift += np.where(limited & (best.total - best.claimed <= SCARCE_SHARE * best.total), 0.25, 0.0)
    boost = np.zeros(n, dtype=np.float64)
    boost[best.positions] = weight * lift
    return boost


def rank(
    model: Model,
    user_id: int | None,
    history: History,
    origin_id: int | None,
    ids: Sequence[int],
    distances_m: npt.NDArray[np.float64],
    now: datetime,
    boost: npt.NDArray[np.float64],
    exploration_share: float,
    places: int | None = None,
) -> Ranked:
    """Order candidates by the model's score plus the deal boost (deal_boosts); merchants
    without history get every exploration slot (recommender.exploration). ``origin_id`` is
    the merchant the user stands at (origin_here). With ``places``, only the first that
    many places of the order are worked out (a page needs no more)."""
    scored = model.score(user_id, history, origin_id, ids, distances_m, now.timestamp(), boost)
    by_score = np.lexsort((np.asarray(ids), -scored.scores))
    fresh = ~scored.known | (model.signals.popularity[np.maximum(scored.columns, 0)] == 0)
    return Ranked(interleave(by_score, fresh, exploration_share, places), scored, fresh)


def origin_here(
    visited: Sequence[int], ids: Sequence[int], distances_m: npt.NDArray[np.float64]
) -> int | None:
    """The user's last visit, if it is among the candidates within ORIGIN_M."""
    if not visited:
        return None
    last = visited[-1]
    for merchant_id, distance in zip(ids, distances_m.tolist(), strict=True):
        if merchant_id == last:
            return last if distance <= ORIGIN_M else None
    return None


def reasons(
    ranked: Ranked,
    at: int,
    distance_m: float,
    offer: MerchantOffer | None,
    category: str,
    visits_by_category: dict[str, int],
    popular_at: float,
) -> list[dict[str, Any]]:
    """Why the candidate at position ``at`` ranks where it does: codes with their numbers,
    and the same in words."""
    out: list[dict[str, Any]] = []
    scored = ranked.scored
    visits = round(float(np.expm1(scored.value("own_visits")[at])))
    if visits:
        out.append({"code": "visited", "visits": visits, "text": _times("you've been here", visits)})
    elif visits_by_category.get(category):
        n = visits_by_category[category]
        out.append(
            {
                "code": "category_habit",
                "category": category,
                "visits": n,
                "text": f"you visited {in_words(category, n)} like this",
            }
        )
    if scored.value("next_share")[at] >= NEXT_SHARE:
        share = float(scored.value("next_share")[at])
        out.append({"code": "next_from_here", "share": round(share, 3), "text": "people often go here next"})
    popularity = float(np.expm1(scored.value("popularity")[at]))
    if popularity >= popular_at:
        total = round(popularity)
        out.append({"code": "popular", "visits": total, "text": f"popular: {total:,} visits"})
    if scored.value("hour_share")[at] >= np.log(BUSY_HOUR_SHARE) and scored.known[at]:
        out.append({"code": "busy_now", "text": "busy at this hour"})
    if ranked.fresh[at]:
        out.append({"code": "new", "text": "new here: few visits yet"})
    if offer is not None and offer.now is not None:
        out.append(deal_reason(offer.now))
    return [*out, *distance_reason(distance_m)]


def deal_reason(offer: DealAt) -> dict[str, Any]:
    """A claimable deal in words, saying what ends when: a daily window that closes before
    the deal ends is "until 14:40 today", not "until 14:40" for a deal that runs for weeks."""
    percent = round(100 * offer.discount)
    lead = f"\N{MINUS SIGN}{percent} %" if percent else "deal"
    deal_ends = offer.deal.valid_until
    window_ends = offer.ends_at or deal_ends
    today = offer.at.astimezone(offer.tz).date()
    if window_ends < deal_ends:
        text = (
            f"{lead} until {_when(window_ends, offer, today)}; "
            # The last day it can be claimed: a deal ending at midnight ends the day before.
            f"deal runs to {_day(deal_ends - timedelta(microseconds=1), offer, today)}"
        )
    else:
        text = f"{lead} until {_when(window_ends, offer, today)}"
    return {
        "code": "deal",
        "deal_id": offer.deal.id,
        "discount_pct": percent,
        "ends_at": offer.local(window_ends),
        "deal_ends_at": offer.local(deal_ends),
        "text": text,
    }


def _when(instant: datetime, offer: DealAt, today: date) -> str:
    """'14:40 today', '02:00 tomorrow' or '12 Dec 14:40', on the merchant's clock."""
    local = instant.astimezone(offer.tz)
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if local.date() == today:
        return f"{clock} today"
    if local.date() == today + timedelta(days=1):
        return f"{clock} tomorrow"
    return f"{_day(instant, offer, today)} {clock}"


def _day(instant: datetime, offer: DealAt, today: date) -> str:
    local = instant.astimezone(offer.tz)
    return f"{local.day} {MONTHS[local.month - 1]}" + ("" if local.year == today.year else f" {local.year}")


def distance_reason(distance_m: float) -> list[dict[str, Any]]:
    metres = round(distance_m)
    text = f"{metres} m" if metres < 1000 else f"{metres / 1000:.1f} km"
    return [{"code": "distance", "metres": metres, "text": text}]


def _times(what: str, n: int) -> str:
    return f"{what} once" if n == 1 else f"{what} twice" if n == 2 else f"{what} {n} times"
