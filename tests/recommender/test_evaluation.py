"""The evaluation protocol on a hand-made set of check-ins whose cases and metrics are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender.baselines import distance_ranker
from recommender.evaluation import Case, Checkins, build_cases, evaluate, rank_of

# Venues 0, 1, 2 lie 100 m apart on a line; venue 3 is far from all of them.
NEAR = np.array([0, 1, 2])
CANDIDATES = {
    0: (NEAR, np.array([0.0, 100.0, 200.0])),
    1: (NEAR, np.array([100.0, 0.0, 100.0])),
    2: (NEAR, np.array([200.0, 100.0, 0.0])),
    3: (np.array([3]), np.array([0.0])),
}
CUTOFF = 5.0  # train: time < 5
ROWS = [  # user, venue, time
    (1, 0, 1), (1, 1, 2), (1, 2, 5), (1, 1, 6),  # two cases: 1 -> 2 (new to u1), 2 -> 1 (known)
    (2, 3, 5),  # no train check-in: skipped
    (3, 0, 1), (3, 3, 6),  # venue 3 is outside the radius of venue 0: skipped
    (4, 3, 1), (4, 3, 6),  # venue 3 alone in its radius: fewer than 2 candidates
    (5, 2, 1), (5, 0, 5), (5, 1, 5),  # same instant: both stand at venue 2, both new to u5
]  # fmt: skip


def cases() -> list[Case]:
    users, venues, times = zip(*ROWS, strict=True)
    found = build_cases(Checkins.of(users, venues, times), CUTOFF, lambda origin: CANDIDATES[origin])
    assert found.test_checkins == 7
    assert dict(found.skipped) == {"no_train_history": 1, "outside_radius": 1, "fewer_than_2_candidates": 1}
    return found.cases


def test_cases_stand_at_the_previous_checkin_strictly_earlier() -> None:
    found = cases()

    assert [(c.user, c.origin, c.venue, c.discovery) for c in found] == [
        (1, 1, 2, True),
        (5, 2, 0, True),
        (5, 2, 1, True),
        (1, 2, 1, False),
    ]


def test_ties_are_broken_by_venue_id() -> None:
    case = cases()[0]  # from venue 1: venues 0 and 2 are both 100 m away

    assert rank_of(case, -case.distances_m) == 2
    assert rank_of(case, np.zeros(3)) == 2  # all tied: 0, 1, 2 in id order


def test_metrics_by_hand() -> None:
    result = evaluate(cases(), {"distance": distance_ranker()})

    # Ranks of the visited venue by distance: 2, 2, 1, 1 (0-based).
    ndcg = (2 / math.log2(4) + 2 / math.log2(3)) / 4
    assert result["cases"] == 4
    assert result["methods"]["distance"] == pytest.approx({"hr@10": 1.0, "ndcg@10": ndcg, "mrr": 5 / 12})
    assert result["discovery"]["cases"] == 3
    discovery_ndcg = (2 / math.log2(4) + 1 / math.log2(3)) / 3
    assert result["discovery"]["methods"]["distance"]["ndcg@10"] == pytest.approx(discovery_ndcg)
    assert result["methods"]["distance"]["hr@10"] == 1.0


def test_sampled_out_checkins_still_count_as_previous_checkins_and_visits() -> None:
    """Training samples a big validation window; a sampled-out check-in still counts as
    the next one's previous check-in and as a visit for discovery."""
    rows = [(7, 0, 1), (7, 0, 9), (7, 1, 10), (7, 2, 11), (7, 1, 12), (7, 0, 13), (7, 2, 14)]
    users, venues, times = zip(*rows, strict=True)
    found = build_cases(
        Checkins.of(users, venues, times), CUTOFF, lambda origin: CANDIDATES[origin], share=1 / 3
    )

    assert found.test_checkins == 6 and found.skipped["sampled_out"] == 4
    # Kept: the 1st and 4th test check-ins. The 4th stands where the sampled-out 3rd was,
    # and is no discovery: the sampled-out 2nd was a visit there.
    assert [(c.origin, c.venue, c.time, c.discovery) for c in found.cases] == [
        (0, 0, 9, False),
        (2, 1, 12, False),
    ]


@pytest.mark.parametrize("share", [0.1, 0.25, 0.4, 0.75, 0.9, 1.0])
def test_a_share_keeps_that_share_of_test_checkins_evenly(share: float) -> None:
    users = np.random.default_rng(3).integers(0, 5, 1000)
    times = np.arange(1000, dtype=np.float64)  # test: from 200 on
    both = (np.array([0, 1]), np.array([0.0, 10.0]))
    found = build_cases(
        Checkins.of(users, np.zeros(1000, dtype=np.int64), times), 200.0, lambda _: both, share
    )

    kept = np.array([c.time for c in found.cases]) - 200
    assert (
        found.test_checkins == 800
        and len(kept) == math.ceil(800 * share) == 800 - found.skipped["sampled_out"]
    )
    assert kept[0] == 0
    gaps = set(np.diff(kept).tolist())
    assert gaps <= {math.floor(1 / share), math.ceil(1 / share)}
