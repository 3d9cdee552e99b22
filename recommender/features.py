"""Per-candidate ranking features: one row per candidate, one column per FEATURES entry.

Each feature has a documented direction (DIRECTION): +1 means a larger value may only
raise a candidate's score, never lower it, all else equal; the combiner is trained with
that constraint (ranker.py) and tests/recommender/test_ranker.py checks it. The same
function serves the offline evaluation and /v1/nearby, so both rank by one code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recommender.signals import HOURS, FloatArray, IntArray, Signals, hour_of_day, row_values

SECONDS_PER_DAY = 86_400.0
RECENCY_DAYS = 30.0
# Distances closer than this are all "here": GPS and a venue's footprint blur them.
NEAR_M = 50.0
# Laplace smoothing of an item's hour-of-day shares, in visits per hour.
HOUR_PRIOR = 1.0

FEATURES: tuple[str, ...] = (
    "own_visits",  # log1p(the user's visits to the candidate)
    "own_recency",  # exp(-days since the user's last visit there / 30), 0 if never
    "own_next",  # log1p(the user's own moves origin -> candidate)
    "closeness",  # -log(metres + 50)
    "popularity",  # log1p(visits by everyone)
    "newcomer_popularity",  # log1p(first visits by anyone: where newcomers go)
    "affinity",  # ALS score of the user for the candidate, 0 without factors
    "next_here",  # log1p(everyone's moves origin -> candidate)
    "first_next_here",  # log1p(those moves that were a first visit)
    "hour_share",  # log(24 x the candidate's smoothed share of visits at this hour)
    "is_origin",  # 1 for the place the user stands at (their last visit)
    "never_visited",  # 1 if the user has not been there
    "explore",  # the user's share of first visits, smoothed: (firsts + 1) / (visits + 2)
    "user_visits",  # log1p(the user's visits anywhere)
    "recent_explore",  # share of first visits among the user's last 10 visits, smoothed
    "hours_away",  # log1p(hours since the user's last visit anywhere)
    "like_yours",  # max cosine of ALS item factors with another place the user visited
    "own_at_this_hour",  # log1p(the user's visits there within an hour of this time of day)
    "own_hours_since",  # log1p(hours since the user's last visit there), large if never
    "next_share",  # share of everyone's moves from the origin that went to the candidate
    "rating",  # Bayesian average of the candidate's review ratings (ratings.py); the prior if unknown
    "reviews",  # log1p(the candidate's reviews)
)
# +1: more never lowers the score; 0: either way (learned freely).
DIRECTION: dict[str, int] = {
    "own_visits": 1,
    "own_recency": 1,
    "own_next": 1,
    "closeness": 1,
    "popularity": 1,
    "newcomer_popularity": 1,
    "affinity": 1,
    "next_here": 1,
    "first_next_here": 1,
    "hour_share": 1,
    "is_origin": 0,
    "never_visited": 0,
    "explore": 0,
    "user_visits": 0,
    "recent_explore": 0,
    "hours_away": 0,
    "like_yours": 1,
    "own_at_this_hour": 1,
    "own_hours_since": 0,
    "next_share": 1,
    "rating": 1,
    # A count says how sure the rating is, not how good the place is: many reviews of a
    # poor place are no reason to rank it higher, so its sign is learned (with the rating).
    "reviews": 0,
}
NEVER_HOURS = 1e6
RECENT = 10
# The places a user visited that "like_yours" compares against: the most recent ones.
LIKE_YOURS_PLACES = 50
COLUMN = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class History:
    """One user's visits, ascending in time."""

    times: FloatArray
    items: IntArray

    @classmethod
    def empty(cls) -> History:
        return cls(np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64))

    def before(self, t: float) -> History:
        """The visits strictly before t."""
        end = int(np.searchsorted(self.times, t, side="left"))
        return History(self.times[:end], self.items[:end])

    def __len__(self) -> int:
        return len(self.times)

    @property
    def last(self) -> int | None:
        return int(self.items[-1]) if len(self.items) else None


def features(
    signals: Signals,
    user_row: int | None,
    history: History,
    origin: int | None,
    candidates: IntArray,
    distances_m: FloatArray,
    now_s: float,
) -> npt.NDArray[np.float32]:
    """The (candidates x FEATURES) matrix for one request.

    ``user_row`` is the user's row in the ALS factors (None: no factors, e.g. a new or
    anonymous user); ``history`` holds the user's visits before ``now_s`` (empty when
    anonymous); ``origin`` is the item the user stands at, if any. Negative items
    (unknown to the model, see Model.columns) get zero for every learned signal.
    """
    n = len(candidates)
    x = np.zeros((len(FEATURES), n), dtype=np.float32).T  # column-major: filled a feature at a time
    known = (candidates >= 0) & (candidates < signals.n_items)
    items = np.where(known, candidates, 0)

    # One pass over the history: distinct places (sorted), where each was first and last
    # visited, how often, and which of them each candidate is (slot; -1: never visited).
    visited, first_index, inverse, counts = np.unique(
        history.items, return_index=True, return_inverse=True, return_counts=True
    )
    units = signals.item_units[items]  # ALS item factors at unit length
    if len(history):
        n_visits = len(history)
        last_index = np.zeros(len(visited), dtype=np.int64)
        np.maximum.at(last_index, inverse, np.arange(n_visits))
        at = np.minimum(np.searchsorted(visited, candidates), len(visited) - 1)
        slot = np.where(visited[at] == candidates, at, -1)
        seen = slot >= 0
        own = np.where(seen, counts[slot], 0)
        age_days = np.maximum(now_s - history.times[last_index[slot]], 0.0) / SECONDS_PER_DAY
        x[:, COLUMN["own_visits"]] = np.log1p(own)
        x[:, COLUMN["own_recency"]] = np.where(seen, np.exp(-age_days / RECENCY_DAYS), 0.0)
        x[:, COLUMN["own_hours_since"]] = np.log1p(np.where(seen, age_days * 24.0, NEVER_HOURS))
        offset = (hour_of_day(history.times) - hour_of_day(now_s) + 1) % HOURS
        at_hour = np.bincount(inverse[offset <= 2], minlength=len(visited))
        x[:, COLUMN["own_at_this_hour"]] = np.log1p(np.where(seen, at_hour[slot], 0))
        if origin is not None:
            # The user's own moves origin -> place, counted per visited place.
            moved_to = inverse[1:][history.items[:-1] == origin]
            moves = np.bincount(moved_to, minlength=len(visited))
            x[:, COLUMN["own_next"]] = np.log1p(np.where(seen, moves[slot], 0))
        x[:, COLUMN["never_visited"]] = ~seen
        recent = min(RECENT, n_visits)
        firsts = np.count_nonzero(first_index >= n_visits - recent)
        x[:, COLUMN["recent_explore"]] = (firsts + 1.0) / (recent + 2.0)
        x[:, COLUMN["hours_away"]] = np.log1p(max(now_s - history.times[-1], 0.0) / 3600.0)
        latest_first = np.argsort(-last_index)[:LIKE_YOURS_PLACES]
        places = visited[latest_first]
        places = places[(places >= 0) & (places < signals.n_items)]
        if len(places):
            cosine = units @ signals.item_units[places].T
            # A visited candidate is not "like" itself.
            own_place = np.flatnonzero(seen)
            column = {int(p): k for k, p in enumerate(places.tolist())}
            for row in own_place.tolist():
                k = column.get(int(candidates[row]))
                if k is not None:
                    cosine[row, k] = -1.0
            x[:, COLUMN["like_yours"]] = np.where(known, cosine.max(axis=1), 0.0)
    else:
        x[:, COLUMN["never_visited"]] = 1.0
        x[:, COLUMN["own_hours_since"]] = np.log1p(NEVER_HOURS)
    x[:, COLUMN["explore"]] = (len(visited) + 1.0) / (len(history) + 2.0)
    x[:, COLUMN["user_visits"]] = np.log1p(len(history))

    x[:, COLUMN["closeness"]] = -np.log(np.asarray(distances_m, dtype=np.float64) + NEAR_M)
    x[:, COLUMN["popularity"]] = np.where(known, np.log1p(signals.popularity[items]), 0.0)
    x[:, COLUMN["newcomer_popularity"]] = np.where(known, np.log1p(signals.newcomers[items]), 0.0)
    if user_row is not None and 0 <= user_row < signals.n_users:
        affinity = (units @ signals.als.user_factors[user_row]) * signals.item_norms[items]
        x[:, COLUMN["affinity"]] = np.where(known, affinity, 0.0)
    if origin is not None:
        flows = row_values(signals.transitions, origin, items) * known.astype(np.float32)
        x[:, COLUMN["next_here"]] = np.log1p(flows)
        if 0 <= origin < signals.n_items:
            x[:, COLUMN["next_share"]] = flows / max(signals.moves_from[origin], 1.0)
        x[:, COLUMN["first_next_here"]] = np.log1p(
            row_values(signals.first_transitions, origin, items) * known
        )
        x[:, COLUMN["is_origin"]] = candidates == origin
    ratings = signals.ratings
    x[:, COLUMN["rating"]] = np.where(known, ratings.average[items], ratings.prior)
    x[:, COLUMN["reviews"]] = np.where(known, np.log1p(ratings.count[items]), 0.0)
    hour = int(hour_of_day(now_s))
    share = (signals.hours[items, hour] + HOUR_PRIOR) / (signals.hour_totals[items] + HOURS * HOUR_PRIOR)
    x[:, COLUMN["hour_share"]] = np.where(known, np.log(share * HOURS), 0.0)
    return x
