"""The synthetic generator: deterministic for a seed, its events and reviews follow the
rules the service enforces, the hidden tastes can be recovered from them (random <
popularity < a taste-aware ranker), and the stars people give follow their hidden liking."""

from __future__ import annotations

from datetime import UTC, datetime

import h3
import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.stats import spearmanr

from lbs.categories import CATEGORY_CODES, N_CATEGORIES
from lbs.services.deal_schedule import Schedule
from seed.people import KIND, REVIEW_WINDOW_DAYS, Behaviour, Habits, generate
from seed.synthetic import DEAL_WINDOWS, SyntheticCity, SyntheticDeals, generate_city, generate_deals

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
World = tuple[SyntheticCity, np.ndarray, SyntheticDeals, Behaviour]


def world(seed: int, merchants: int = 4000, people: int = 1500, days: int = 60) -> World:
    city = generate_city(merchants, seed=seed, size_km=20.0)
    categories = np.array([CATEGORY_CODES[c] for c in city.categories], dtype=np.int64)
    deals = generate_deals(categories, NOW, days, seed)
    return city, categories, deals, generate(city.lats, city.lons, categories, deals, people, days, NOW, seed)


@pytest.fixture(scope="module")
def town() -> World:
    return world(seed=11)


def test_the_same_seed_gives_the_same_city_people_and_events() -> None:
    one, again, other = world(3, 800, 200, 20), world(3, 800, 200, 20), world(4, 800, 200, 20)

    assert np.array_equal(one[0].lats, again[0].lats) and one[0].hours == again[0].hours
    for field in ("kind", "person", "merchant", "deal", "claim", "cell", "at"):
        assert np.array_equal(getattr(one[3].events, field), getattr(again[3].events, field)), field
    assert np.array_equal(one[3].people.taste, again[3].people.taste)
    for field in ("claim", "rating", "at"):
        assert np.array_equal(getattr(one[3].reviews, field), getattr(again[3].reviews, field)), field
    assert np.array_equal(one[2].valid_until, again[2].valid_until)
    assert not np.array_equal(one[0].lats, other[0].lats)
    assert len(one[3].events) != len(other[3].events) or not np.array_equal(
        one[3].events.merchant, other[3].events.merchant
    )


def test_every_kind_of_event_happens_within_the_period(town: World) -> None:
    _, _, _, behaviour = town
    events = behaviour.events
    counts = {kind: int((events.kind == code).sum()) for kind, code in KIND.items()}

    assert all(counts[kind] > 0 for kind in KIND), counts
    # A funnel: shown > clicked > claimed > redeemed.
    assert counts["impression"] > counts["click"] > counts["claim"] > counts["redemption"]
    assert np.all(np.diff(events.at) >= 0)
    assert events.at.min() >= NOW.timestamp() - 60 * 86_400 and events.at.max() < NOW.timestamp()
    shown = events.kind == KIND["impression"]
    assert np.all(events.cell[shown] > 0) and np.all(events.cell[~shown] == 0)
    assert {h3.get_resolution(h3.int_to_str(int(c))) for c in np.unique(events.cell[shown])} == {9}


def test_claims_follow_the_deal_rules(town: World) -> None:
    _, _, deals, behaviour = town
    claims = behaviour.claims
    assert len(claims.person) > 20

    # Once per person and deal, never beyond the stock, each inside a window of its deal.
    pairs = claims.person * len(deals.merchants) + claims.deal
    assert len(np.unique(pairs)) == len(pairs)
    taken = np.bincount(claims.deal, minlength=len(deals.merchants))
    limited = deals.quantity > 0
    assert np.all(taken[limited] <= deals.quantity[limited])
    for k in range(len(claims.person)):
        d = int(claims.deal[k])
        schedule = Schedule.of(
            datetime.fromtimestamp(deals.valid_from[d], UTC),
            datetime.fromtimestamp(deals.valid_until[d], UTC),
            DEAL_WINDOWS[int(deals.window[d])][1],
            "Europe/Helsinki",
        )
        assert schedule.window_at(datetime.fromtimestamp(claims.claimed_at[k], UTC)) is not None
    redeemed = ~np.isnan(claims.redeemed_at)
    assert 0 < redeemed.sum() < len(redeemed)
    assert np.all(claims.redeemed_at[redeemed] > claims.claimed_at[redeemed])
    assert np.all(claims.redeemed_at[redeemed] < deals.valid_until[claims.deal[redeemed]])
    # Each claim event names its claim, at its merchant.
    events = behaviour.events
    claim_events = events.kind == KIND["claim"]
    assert np.array_equal(np.sort(events.claim[claim_events]), np.arange(len(claims.person)))
    assert np.array_equal(events.merchant[claim_events], deals.merchants[events.deal[claim_events]])


@pytest.fixture(scope="module")
def crowd() -> World:
    """Enough people in a small city for a few hundred reviews."""
    return world(seed=5, merchants=1500, people=20_000, days=60)


def test_only_redeemed_vouchers_are_reviewed_once_within_the_window(crowd: World) -> None:
    _, _, _, behaviour = crowd
    reviews, claims = behaviour.reviews, behaviour.claims
    redeemed_at = claims.redeemed_at[reviews.claim]
    waited = reviews.at - redeemed_at

    assert len(reviews) > 200
    assert not np.isnan(redeemed_at).any()
    assert len(np.unique(reviews.claim)) == len(reviews)
    assert waited.min() > 0 and waited.max() <= REVIEW_WINDOW_DAYS * 86_400
    assert reviews.at.max() < NOW.timestamp() and np.all(np.diff(reviews.at) >= 0)
    assert set(np.unique(reviews.rating).tolist()) <= {1, 2, 3, 4, 5}
    # About review_rate of the redemptions whose review window closed before now.
    closed = claims.redeemed_at < NOW.timestamp() - REVIEW_WINDOW_DAYS * 86_400
    share = np.isin(np.flatnonzero(closed), reviews.claim).mean()
    assert abs(share - Habits().review_rate) < 0.06, share


def test_the_stars_follow_the_hidden_liking_and_appeal(crowd: World) -> None:
    _, categories, deals, behaviour = crowd
    reviews, claims, people = behaviour.reviews, behaviour.claims, behaviour.people
    person = claims.person[reviews.claim]
    merchant = deals.merchants[claims.deal[reviews.claim]]

    # Each star against the reviewer's own liking of the merchant (taste x appeal)...
    liking = people.taste[person, categories[merchant]] * people.appeal[merchant]
    assert spearmanr(reviews.rating, liking).statistic > 0.35
    # ... and a merchant's mean stars against its hidden appeal, where it has a few reviews.
    n = np.bincount(merchant, minlength=len(categories))
    mean = np.bincount(merchant, weights=reviews.rating, minlength=len(categories)) / np.maximum(n, 1)
    some = n >= 3
    assert some.sum() >= 20
    assert spearmanr(mean[some], people.appeal[some]).statistic > 0.4


def _visits(behaviour: Behaviour) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e = behaviour.events
    visit = e.kind == KIND["visit"]
    return e.person[visit], e.merchant[visit], e.at[visit]


def test_the_hidden_tastes_show_in_what_people_visit(town: World) -> None:
    _, categories, _, behaviour = town
    person, merchant, _ = _visits(behaviour)
    seen = np.zeros((len(behaviour.people.taste), N_CATEGORIES))
    np.add.at(seen, (person, categories[merchant]), 1.0)
    active = seen.sum(axis=1) >= 20
    truth = behaviour.people.taste[active]
    estimate = seen[active] / seen[active].sum(axis=1, keepdims=True)

    cosine = (truth * estimate).sum(axis=1) / np.linalg.norm(truth, axis=1) / np.linalg.norm(estimate, axis=1)
    shuffled = estimate[np.random.default_rng(0).permutation(len(estimate))]
    baseline = (
        (truth * shuffled).sum(axis=1) / np.linalg.norm(truth, axis=1) / np.linalg.norm(shuffled, axis=1)
    )

    assert cosine.mean() > 0.7 > baseline.mean() + 0.3


def test_popularity_beats_random_and_taste_beats_popularity(town: World) -> None:
    city, categories, _, behaviour = town
    person, merchant, at = _visits(behaviour)
    split = np.quantile(at, 0.75)
    train, test = at < split, at >= split
    popularity = np.bincount(merchant[train], minlength=len(categories)).astype(float)
    taste = np.ones((len(behaviour.people.taste), N_CATEGORIES))  # add-one smoothing
    np.add.at(taste, (person[train], categories[merchant[train]]), 1.0)
    taste /= taste.sum(axis=1, keepdims=True)

    # Each held-out visit: the merchants within 1 km of the one visited are the candidates.
    km = np.column_stack([(city.lons - city.lons.mean()) * 55.5, (city.lats - city.lats.mean()) * 110.6])
    tree = cKDTree(km)
    rng = np.random.default_rng(1)
    hits = {"random": 0, "popularity": 0, "taste": 0}
    cases = 0
    for p, m in zip(person[test].tolist(), merchant[test].tolist(), strict=True):
        candidates = np.array(tree.query_ball_point(km[m], r=1.0))
        if len(candidates) < 30:
            continue
        cases += 1
        scores = {
            "random": rng.random(len(candidates)),
            "popularity": popularity[candidates],
            "taste": taste[p, categories[candidates]] * (popularity[candidates] + 1.0),
        }
        for name, score in scores.items():
            top = candidates[np.argsort(-score, kind="stable")[:10]]
            hits[name] += int(m in top)
    rates = {name: hit / cases for name, hit in hits.items()}

    assert cases > 2000
    assert rates["popularity"] > 1.5 * rates["random"], rates
    assert rates["taste"] > 1.2 * rates["popularity"], rates
