"""Memory of API workers holding one model: memory-mapped (format 2) against a private copy each.

Forks ``--workers`` processes per mode, as gunicorn does; each loads the model the way
ModelHolder does (recommender.artifact.load), then scores ``--requests`` requests of
500 candidates each (every candidate's features read from the model's arrays), and
reports its RSS, PSS and USS (psutil's memory_full_info) after loading and after the
requests, less what it held before loading. The peer, in the same run, is the same model
with every array copied into the worker's own memory: what format 1 (.npz) gave.

    .venv/bin/python benchmarks/model_memory.py --model /tmp/benchcity/lbs-models
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from scipy.sparse import csr_matrix

from recommender import artifact
from recommender.model import Model

CANDIDATES = 500
MB = 1024 * 1024


def _copied(model: Model) -> Model:
    """The model with every array in this process's own memory, as format 1 loaded it."""
    s = model.signals

    def own(m: csr_matrix) -> csr_matrix:
        return csr_matrix((m.data.copy(), m.indices.copy(), m.indptr.copy()), shape=m.shape)

    signals = replace(
        s,
        popularity=s.popularity.copy(),
        newcomers=s.newcomers.copy(),
        hours=s.hours.copy(),
        transitions=own(s.transitions),
        first_transitions=own(s.first_transitions),
        als=replace(s.als, user_factors=s.als.user_factors.copy(), item_factors=s.als.item_factors.copy()),
    )
    return Model(signals, model.ranker, model.user_ids.copy(), model.item_ids.copy(), model.meta)


def _memory() -> dict[str, float]:
    info = psutil.Process().memory_full_info()
    return {"rss": info.rss / MB, "pss": info.pss / MB, "uss": info.uss / MB}


def _worker(path: Path, private: bool, requests: int, seed: int, out: Any) -> None:
    before = _memory()
    model = artifact.load(path)
    if private:
        model = _copied(model)
    loaded = _memory()
    rng = np.random.default_rng(seed)
    n_items = len(model.item_ids)
    for _ in range(requests):
        candidates = model.item_ids[rng.integers(0, n_items, CANDIDATES)]
        user = int(model.user_ids[rng.integers(0, len(model.user_ids))])
        visits = model.item_ids[rng.integers(0, n_items, 20)]
        history = model.history(np.linspace(1.7e9, 1.8e9, 20), visits)
        model.score(user, history, int(candidates[0]), candidates, rng.uniform(0, 2000, CANDIDATES), 1.8e9)
    served = _memory()
    out.put(
        {
            "loaded": {k: loaded[k] - before[k] for k in loaded},
            "served": {k: served[k] - before[k] for k in served},
        }
    )
    # Stay alive until every worker has measured: PSS divides shared pages among the living.
    time.sleep(3)


def _mode(path: Path, private: bool, workers: int, requests: int) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [
        context.Process(target=_worker, args=(path, private, requests, seed, queue))
        for seed in range(workers)
    ]
    for p in processes:
        p.start()
    found = [queue.get() for _ in processes]
    for p in processes:
        p.join()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", type=Path, required=True, help="a model directory (its CURRENT) or a model"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    path = artifact.current(args.model) if (args.model / artifact.POINTER).exists() else args.model
    assert path is not None and path.is_dir(), f"{path}: not a format-2 model directory"
    # Only the metadata here: a parent that ran LightGBM (OpenMP) before forking leaves its
    # children hung in their first parallel region (gunicorn's master must not either).
    meta = json.loads((path / artifact.META).read_text())
    print(
        f"model {path.name}: format {meta['format']}, {meta['users']:,} users x {meta['items']:,} "
        f"merchants; {args.workers} workers, {args.requests} requests of {CANDIDATES} candidates"
    )
    columns = ("RSS loaded", "PSS loaded", "RSS served", "PSS served", "USS served")
    print(f"{'mode':<22} {'worker':>6} " + " ".join(f"{c:>11}" for c in columns))
    results = {}
    for label, private in (("mapped (format 2)", False), ("private copy (peer)", True)):
        results[label] = _mode(path, private, args.workers, args.requests)
        for i, r in enumerate(results[label]):
            values = [r["loaded"]["rss"], r["loaded"]["pss"], r["served"]["rss"], r["served"]["pss"]]
            values.append(r["served"]["uss"])
            print(f"{label:<22} {i:>6} " + " ".join(f"{v:>8.0f} MB" for v in values))
    mapped, peer = (float(np.mean([r["served"]["pss"] for r in results[k]])) for k in results)
    print(
        f"PSS per worker after serving: mapped {mapped:.0f} MB, private copy {peer:.0f} MB "
        f"({mapped / peer:.2f} x)"
    )


if __name__ == "__main__":
    main()
