"""Where `lbs train`'s time goes on a city: reading the window, ALS alone, the whole pipeline.

    .venv/bin/python benchmarks/train_steps.py            # lbs_bench: 1M merchants, 100k users, 30 days

Reads only (no model is written). In one process, as `lbs train` runs them: the window's
events (``read_interactions``), the active merchants (``read_merchants``), ALS alone on the
window's users x merchants matrix (the weighting and parameters `lbs train` uses, on the CPU
backend as here), then the whole ``train_from_events``. docs/scaling.md uses the ALS share
for what a GPU would change, and the whole for training time per million events.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psutil
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.models import Event
from lbs.training import read_interactions, read_merchants, train_from_events
from recommender.als import train_als
from recommender.interactions import interaction_matrix
from recommender.training import TrainParams


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench")
    parser.add_argument("--days", type=int, default=365, help="the window, as lbs train --days")
    parser.add_argument("--radius-m", type=float, default=2000.0)
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    params = TrainParams()
    kinds = tuple(k for k, w in params.weighting.kinds.items() if w > 0)
    now = datetime.now(UTC)
    with Session(engine) as session:
        logged = session.scalar(select(func.count()).select_from(Event))
        started = time.perf_counter()
        data = read_interactions(session, now - timedelta(days=args.days), now, kinds)
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        merchants = read_merchants(session)
        merchants_s = time.perf_counter() - started

    users, rows = np.unique(data.users, return_inverse=True)
    items, cols = np.unique(data.items, return_inverse=True)
    matrix = interaction_matrix(
        rows, cols, data.kinds, data.times, now.timestamp(), (len(users), len(items)), params.weighting
    )
    started = time.perf_counter()
    train_als(matrix, params.als, use_gpu=False)
    als_s = time.perf_counter() - started

    with Session(engine) as session:
        started = time.perf_counter()
        model = train_from_events(session, now, args.days, args.radius_m, params)
        whole_s = time.perf_counter() - started
    rss_gb = psutil.Process().memory_info().rss / 2**30
    print(f"{logged:,} events logged; {len(data.users):,} interactions in the window, {len(users):,} users x "
          f"{len(items):,} merchants; {len(merchants.ids):,} active merchants\n")  # fmt: skip
    print("| step | seconds |")
    print("| --- | ---: |")
    print(f"| read the window (`read_interactions`) | {read_s:.1f} |")
    print(f"| read the active merchants (`read_merchants`) | {merchants_s:.1f} |")
    print(f"| ALS alone, {params.als.factors} factors, {params.als.iterations} sweeps, CPU | {als_s:.1f} |")
    print(f"| the whole `train_from_events` (it reads again, fits ALS twice) | {whole_s:.1f} |")
    print(f"\nmodel: {model.meta.get('validation_cases', 0):,} validation cases; process RSS at the end "
          f"{rss_gb:.2f} GB; load average {' / '.join(f'{x:.1f}' for x in psutil.getloadavg())}")  # fmt: skip


if __name__ == "__main__":
    main()
