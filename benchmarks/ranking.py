"""Recommender benchmark: `lbs train`'s pipeline at scale, and re-ranking 500 candidates.

    .venv/bin/python benchmarks/ranking.py [--users 100000 --merchants 50000 --interactions 5000000]

Data: a synthetic town (recommender.synthetic: merchants on a 200 m grid, users with
three favourite places near each other, a quarter of visits to popular places anywhere),
at the issue's scale. Candidates come from the service's nearby index (as in `lbs
evaluate`).

- Training: recommender.training.train end to end (signals and ALS before the
  validation window, its cases sampled to 12,000 visits with their candidates and
  features, the trial and final LambdaRank fits, signals and ALS again on the whole
  window), against implicit's ALS fit alone on the same matrix (the peer: what any ALS
  recommender pays), each step's time printed.
- Re-ranking: users standing at their last visit, the 500 nearest merchants, their
  history before now: Model.score (features, cascade of trees) plus the final sort, one
  thread, against numpy sorting the same 500 by distance (the floor of any ranking).
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import numpy as np

from lbs.evaluation import Venues, candidate_source
from recommender import training
from recommender.als import train_als
from recommender.interactions import Weighting, interaction_matrix
from recommender.synthetic import town

CANDIDATES = 500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--merchants", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    side = math.isqrt(args.merchants - 1) + 1
    world = town(users=args.users, side=side, visits_per_user=args.interactions // args.users)
    data = training.Interactions.visits_only(world.users, world.items, world.times)
    candidates = candidate_source(Venues(world.item_ids, world.lats, world.lons), 2000.0)
    steps: list[tuple[str, float]] = []
    started = time.perf_counter()
    model = training.train(data, candidates, progress=lambda step: steps.append((step, time.perf_counter())))
    ours = time.perf_counter() - started
    ends = [t for _, t in steps[1:]] + [started + ours]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shape = (len(model.user_ids), len(model.item_ids))
    users, items = np.searchsorted(model.user_ids, data.users), model.columns(data.items)
    matrix = interaction_matrix(users, items, data.kinds, data.times, data.times.max(), shape, Weighting())
    started = time.perf_counter()
    train_als(matrix)
    peer = time.perf_counter() - started
    scale = f"{len(model.user_ids):,} users x {len(model.item_ids):,} merchants x {len(data):,} interactions"
    print(f"training on {scale}")
    print(f"  lbs train pipeline: {ours:.1f} s (target <= 30 s); peak RSS {peak_mb:,.0f} MB; "
          f"{model.meta['validation_cases']:,} validation cases")  # fmt: skip
    for (step, begun), ended in zip(steps, ends, strict=True):
        print(f"    {step}: {ended - begun:.1f} s")
    print(f"  implicit ALS alone: {peer:.1f} s; ratio {ours / peer:.2f}x")

    wide = candidate_source(Venues(world.item_ids, world.lats, world.lons), 3000.0)
    history = training.histories(world.users, model.columns(world.items), world.times)
    rng = np.random.default_rng(1)
    now = float(world.times.max()) + 3600.0
    timings, floor = [], []
    for r in range(args.requests):
        user = int(rng.choice(model.user_ids))
        visits = history[user]
        ids, distances = wide(int(model.item_ids[visits.items[-1]]))
        ids, distances = ids[:CANDIDATES], distances[:CANDIDATES]
        origin = int(ids[0])
        t0 = time.perf_counter()
        scores = model.score(user, visits, origin, ids, distances, now).scores
        np.lexsort((ids, -scores))
        t1 = time.perf_counter()
        np.lexsort((ids, distances))
        t2 = time.perf_counter()
        if r >= 50:  # warm-up
            timings.append(t1 - t0)
            floor.append(t2 - t1)
    p50, p99 = np.percentile(timings, [50, 99]) * 1000
    f50, f99 = np.percentile(floor, [50, 99]) * 1000
    trees = model.ranker.booster.num_trees()
    print(f"re-rank {CANDIDATES} candidates ({len(timings):,} requests, {trees} trees, one thread):")
    print(f"  lbs: p50 {p50:.3f} ms, p99 {p99:.3f} ms (target p99 <= 1 ms)")
    print(f"  numpy sort by distance: p50 {f50:.3f} ms, p99 {f99:.3f} ms; ratio p99 {p99 / f99:.0f}x")


if __name__ == "__main__":
    main()
