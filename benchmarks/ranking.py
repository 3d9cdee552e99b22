"""Recommender benchmark: training at scale, and re-ranking 500 candidates per request.

    .venv/bin/python benchmarks/ranking.py [--users 100000 --merchants 50000 --interactions 5000000]

Training: signals (counts, transitions, hours) plus ALS on synthetic interactions
(Zipf-popular merchants, users of varied activity), timed against implicit's ALS fit
alone on the same matrix (the peer: what any ALS recommender pays). Re-ranking: the
features and the LambdaRank score of 500 candidates for a user with 200 visits, timed
against numpy sorting the same 500 by distance (the floor of any ranking).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from recommender import training
from recommender.als import train_als
from recommender.interactions import Weighting, interaction_matrix
from recommender.model import Model
from recommender.ranker import RankerParams
from recommender.signals import Signals, Visits
from recommender.synthetic import town


def synthetic(users: int, merchants: int, n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    u = rng.integers(0, users, n)
    m = np.minimum(rng.zipf(1.2, n) - 1, merchants - 1)
    m = rng.permutation(merchants)[m]
    t = np.sort(rng.uniform(1.7e9, 1.7e9 + 365 * 86_400, n))
    return u.astype(np.int64), m.astype(np.int64), t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--merchants", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    users, items, times = synthetic(args.users, args.merchants, args.interactions)
    shape = (args.users, args.merchants)
    started = time.perf_counter()
    matrix = interaction_matrix(
        users, items, np.full(len(users), "visit"), times, times[-1], shape, Weighting()
    )
    signals = Signals.fit(Visits.of(users, items, times), matrix)
    ours = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    train_als(matrix)
    peer = time.perf_counter() - started
    scale = f"{args.users:,} users x {args.merchants:,} merchants x {args.interactions:,} interactions"
    print(f"training on {scale}")
    print(f"  lbs signals + ALS: {ours:.1f} s (target <= 30 s); peak RSS {peak_mb:,.0f} MB")
    print(f"  implicit ALS alone: {peer:.1f} s; ratio {ours / peer:.2f}x")

    small = town()
    ranker = training.train(
        training.Interactions.visits_only(small.users, small.items, small.times),
        small.candidates_of(3000),
        training.TrainParams(ranker=RankerParams()),
    ).ranker
    model = Model(signals, ranker, np.arange(args.users), np.arange(args.merchants))
    rng = np.random.default_rng(1)
    timings, floor = [], []
    for r in range(args.requests):
        user = int(rng.integers(args.users))
        candidates = rng.choice(args.merchants, 500, replace=False)
        distances = rng.uniform(0, 2000, 500)
        history = model.history(np.sort(rng.uniform(1.7e9, 1.73e9, 200)), rng.choice(args.merchants, 200))
        now = 1.74e9
        t0 = time.perf_counter()
        scores = model.score(user, history, int(history.items[-1]), candidates, distances, now).scores
        np.lexsort((candidates, -scores))
        t1 = time.perf_counter()
        np.lexsort((candidates, distances))
        t2 = time.perf_counter()
        if r >= 50:  # warm-up
            timings.append(t1 - t0)
            floor.append(t2 - t1)
    p50, p99 = np.percentile(timings, [50, 99]) * 1000
    f50, f99 = np.percentile(floor, [50, 99]) * 1000
    print(f"re-rank 500 candidates ({len(timings):,} requests, {ranker.booster.num_trees()} trees):")
    print(f"  lbs: p50 {p50:.3f} ms, p99 {p99:.3f} ms (target p99 <= 1 ms)")
    print(f"  numpy sort by distance: p50 {f50:.3f} ms, p99 {f99:.3f} ms; ratio p99 {p99 / f99:.0f}x")


if __name__ == "__main__":
    main()
