"""Do review ratings help the ranking? The demo city's synthetic people, ranked with and without them.

    .venv/bin/python benchmarks/rating_features.py                   # the demo: 2,000 people, 60 days
    .venv/bin/python benchmarks/rating_features.py --users 50000 --seeds 7 8 9

Merchants are the demo's (seed.demo): the OpenStreetMap extract of Helsinki when it is
beside the clone, else the synthetic city, in the demo's order. People, their events and
their reviews come from seed.people with the demo's parameters (``--users``, ``--days``,
each of ``--seeds``). The check-ins have no ratings, so this is where ratings are judged.

The protocol of docs/recommender.md on their visits (visit and redemption events): train
on everything before the 80th percentile of the visits' times (events of the kinds `lbs
train` reads, and the reviews written before it), test on the visits after; each stands at
the person's previous visit, the candidates are every merchant within the radius as the
nearby index finds them. Two models from the same training run's code on the same data:
"lbs" without the rating features (RankerParams.without) and "lbs+ratings" with them;
both, and the baselines (distance, popularity, own frequency, ALS alone, and the Bayesian
rating alone, ties by distance), rank the same cases. Also over the cases whose visited
merchant had reviews before the split: where a rating could matter at all. The difference
lbs+ratings - lbs is paired (the same cases): its 95 % interval is a bootstrap over cases.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from run_report import git_state, machine

from lbs.categories import CATEGORY_CODES
from lbs.evaluation import Venues, candidate_source, table
from lbs.models.events import EVENT_KINDS
from recommender import training
from recommender.baselines import (
    als_ranker,
    baseline_rankers,
    lbs_ranker,
)
from recommender.evaluation import (
    Case,
    Checkins,
    FloatArray,
    Ranker,
    build_cases,
    evaluate,
    rank_of,
    train_cutoff,
)
from recommender.model import Model
from recommender.ranker import RankerParams
from recommender.ratings import Categories, Reviews
from seed import osm
from seed.demo import HELSINKI_OSM, DemoParams
from seed.people import Behaviour, generate
from seed.synthetic import generate_city, generate_deals

RATING_FEATURES = ("rating", "reviews")
K = 10
BOOTSTRAP = 2000
# The demo's synthetic city when the extract is not there (seed.demo.merchants).
SYNTHETIC_MERCHANTS = 5000


def demo_merchants() -> tuple[str, Venues, list[str]]:
    """Where the merchants come from, their positions (ids: their order) and categories."""
    if HELSINKI_OSM.is_file():
        rows = list(osm.read(HELSINKI_OSM).rows.values())
        lats = np.array([r.lat for r in rows])
        lons = np.array([r.lon for r in rows])
        source, categories = HELSINKI_OSM.name, [r.category.value for r in rows]
    else:
        city = generate_city(SYNTHETIC_MERCHANTS, seed=DemoParams().seed)
        lats, lons, source, categories = city.lats, city.lons, "the synthetic city", city.categories
    return source, Venues(np.arange(len(lats), dtype=np.int64), lats, lons), categories


def paired_gain(cases: list[Case], base: Ranker, other: Ranker, seed: int) -> dict[str, float]:
    """Mean NDCG@10 of ``other`` minus ``base`` over the same cases, with a bootstrap 95 % interval."""
    if not cases:
        return {"ndcg@10": 0.0, "low": 0.0, "high": 0.0}

    def gains(ranker: Ranker) -> FloatArray:
        ranks = np.array([rank_of(c, ranker(c)) for c in cases])
        return np.where(ranks < K, 1.0 / np.log2(ranks + 2.0), 0.0)

    diff = gains(other) - gains(base)
    picks = np.random.default_rng(seed).integers(0, len(diff), size=(BOOTSTRAP, len(diff)))
    means = diff[picks].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"ndcg@10": float(diff.mean()), "low": float(low), "high": float(high)}


def rating_ranker(model: Model) -> Ranker:
    """The Bayesian rating alone (the prior for a merchant the model has not seen), ties by distance."""
    ratings = model.signals.ratings

    def rank(case: Case) -> FloatArray:
        columns = model.columns(case.candidates)
        known = columns >= 0
        rating = np.where(known, ratings.average[np.maximum(columns, 0)], ratings.prior).astype(np.float64)
        return rating - 1e-9 * case.distances_m

    return rank


def run(
    venues: Venues, codes: np.ndarray, users: int, days: int, seed: int, now: datetime, radius_m: float
) -> dict[str, Any]:
    until = now.replace(hour=0, minute=0, second=0, microsecond=0)
    deals = generate_deals(codes, until, days, seed)
    behaviour: Behaviour = generate(venues.lats, venues.lons, codes, deals, users, days, until, seed)
    events, claims, written = behaviour.events, behaviour.claims, behaviour.reviews
    kinds = np.asarray(EVENT_KINDS)[events.kind]
    reads = [k for k, weight in training.TrainParams().weighting.kinds.items() if weight > 0]
    read = np.isin(kinds, reads)
    data = training.Interactions(events.person[read], events.merchant[read], kinds[read], events.at[read])
    visit = np.isin(kinds, training.VISIT_KINDS)
    checkins = Checkins.of(events.person[visit], events.merchant[visit], events.at[visit])
    cutoff = train_cutoff(checkins.times)
    train = data.times < cutoff
    train_data = training.Interactions(
        data.users[train], data.items[train], data.kinds[train], data.times[train]
    )
    reviews = Reviews.of(deals.merchants[claims.deal[written.claim]], written.rating, written.at).before(
        cutoff
    )
    categories = Categories(venues.ids, codes)
    candidates = candidate_source(venues, radius_m)

    started = time.perf_counter()
    without = training.train(
        train_data,
        candidates,
        training.TrainParams(ranker=RankerParams(without=RATING_FEATURES)),
        reviews=reviews,
        categories=categories,
    )
    with_ratings = training.train(train_data, candidates, reviews=reviews, categories=categories)
    train_seconds = time.perf_counter() - started

    before = checkins.subset(checkins.times < cutoff)
    found = build_cases(checkins, cutoff, candidates)
    rankers = {
        **baseline_rankers(before, (users, len(venues.ids))),
        "als": als_ranker(with_ratings),
        "rating": rating_ranker(with_ratings),
        "lbs": lbs_ranker(without, checkins),
        "lbs+ratings": lbs_ranker(with_ratings, checkins),
    }
    reviewed = np.bincount(reviews.items, minlength=len(venues.ids))
    rated_cases = [c for c in found.cases if reviewed[c.venue] > 0]
    considered = found.test_checkins
    return {
        "seed": seed,
        "radius_m": radius_m,
        "users": users,
        "days": days,
        "visits": len(checkins),
        "reviews_before_split": len(reviews),
        "merchants_reviewed": int((reviewed > 0).sum()),
        "merchants": len(venues.ids),
        "cases": len(found.cases),
        "outside_radius_share": found.skipped["outside_radius"] / considered if considered else 0.0,
        **evaluate(found.cases, rankers),
        "reviewed_venue": evaluate(rated_cases, rankers),
        "gain": {
            "all": paired_gain(found.cases, rankers["lbs"], rankers["lbs+ratings"], seed),
            "reviewed_venue": paired_gain(rated_cases, rankers["lbs"], rankers["lbs+ratings"], seed),
        },
        "held_out_in_training": {
            "lbs": without.meta["metrics"]["held_out"]["all"],
            "lbs+ratings": with_ratings.meta["metrics"]["held_out"]["all"],
        },
        "train_seconds": train_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=DemoParams().users)
    parser.add_argument("--days", type=int, default=DemoParams().days)
    parser.add_argument("--seeds", type=int, nargs="+", default=[DemoParams().seed])
    parser.add_argument("--radius-m", type=float, default=2000.0)
    parser.add_argument("--out", type=Path, default=None, help="write every run's numbers as JSON")
    args = parser.parse_args()

    source, venues, names = demo_merchants()
    codes = np.array([CATEGORY_CODES[c] for c in names], dtype=np.int64)
    # A fixed day: the same people and events on any day the script runs.
    now = datetime(2026, 12, 1, tzinfo=UTC)
    print(f"{git_state()}; {machine()}")
    print(f"merchants: {len(venues.ids):,} from {source}; {args.users:,} people over {args.days} days")
    runs = []
    for seed in args.seeds:
        result = run(venues, codes, args.users, args.days, seed, now, args.radius_m)
        runs.append(result)
        print(
            f"\nseed {seed}: {result['visits']:,} visits, {result['reviews_before_split']:,} reviews "
            f"before the split of {result['merchants_reviewed']:,} merchants; "
            f"training both {result['train_seconds']:.0f} s"
        )
        print(table(result))
        rated = result["reviewed_venue"]
        print(f"cases whose visited merchant had reviews: {rated['cases']:,}")
        for name in ("rating", "lbs", "lbs+ratings"):
            m = rated["methods"].get(name)
            if m is not None and rated["cases"]:
                print(f"  {name:<12} HR@10 {m['hr@10']:.4f}  NDCG@10 {m['ndcg@10']:.4f}  MRR {m['mrr']:.4f}")
        for part, gain in result["gain"].items():
            print(
                f"NDCG@10 lbs+ratings - lbs, {part} cases: {gain['ndcg@10']:+.4f} "
                f"(95 % interval {gain['low']:+.4f} to {gain['high']:+.4f})"
            )
    if len(runs) > 1:
        gains = [r["gain"]["all"]["ndcg@10"] for r in runs]
        print(f"\nNDCG@10 lbs+ratings - lbs per seed: {', '.join(f'{g:+.4f}' for g in gains)}")
    if args.out is not None:
        args.out.write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
