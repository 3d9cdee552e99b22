"""What one serving process holds for a city: the nearby index, the deal book and the model.

    .venv/bin/python benchmarks/footprint.py        # lbs_bench (1M merchants) and /tmp/benchcity's model

Reads only. In one fresh process, each structure is built the way a worker builds it
(LiveIndex.load and DealBook.load from the database, ModelHolder.get from the model
directory) and measured by the growth of the process's resident memory (RSS) and the build
time; with --traced, by the Python and numpy allocations held afterwards and at the peak
(tracemalloc) instead of the time.
docs/scaling.md divides these by the city's merchants, deals and users.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.models import Deal, Merchant, User
from lbs.services.database_identity import database_id
from lbs.services.deal_book import DealBook
from lbs.services.live_index import LiveIndex
from lbs.services.relevance import ModelHolder

MB = 2**20


def measured(name: str, build: Callable[[], object], traced: bool) -> tuple[object, str]:
    gc.collect()
    rss = psutil.Process().memory_info().rss
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    built = build()
    seconds = time.perf_counter() - started
    gc.collect()
    grown = (psutil.Process().memory_info().rss - rss) / MB
    if not traced:
        return built, f"| {name} | {grown:,.0f} MB | {seconds:.1f} s |"
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return built, f"| {name} | {grown:,.0f} MB | {held / MB:,.0f} MB | {peak / MB:,.0f} MB |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench")
    parser.add_argument("--model-dir", default="/tmp/benchcity/lbs-models")
    parser.add_argument("--resolutions", default="7,9,11")
    parser.add_argument(
        "--traced",
        action="store_true",
        help="also what tracemalloc sees held and at peak (builds run slower)",
    )
    args = parser.parse_args()
    resolutions = tuple(int(r) for r in args.resolutions.split(","))
    engine = make_engine(args.database_url)
    with Session(engine) as session:
        merchants = session.scalar(select(func.count()).where(Merchant.status == "active"))
        deals = session.scalar(select(func.count()).select_from(Deal))
        users = session.scalar(select(func.count()).select_from(User))
    print(f"{merchants:,} active merchants, {deals:,} deals, {users:,} users; "
          f"process at start {psutil.Process().memory_info().rss / MB:,.0f} MB RSS\n")  # fmt: skip
    if args.traced:
        print("| structure | RSS growth | held (tracemalloc) | peak while built |")
        print("| --- | ---: | ---: | ---: |")
    else:
        print("| structure | RSS growth | build |")
        print("| --- | ---: | ---: |")

    live = LiveIndex(resolutions, 1.0)

    def load_index() -> LiveIndex:
        with Session(engine) as session:
            live.load(session)
        return live

    book = DealBook(resolutions, 1.0)
    live.listeners.append(book.merchants_changed)

    def load_book() -> DealBook:
        with Session(engine) as session:
            book.load(session, datetime.now(UTC))
        return book

    def this_database() -> str:
        with Session(engine) as session:
            return database_id(session)

    holder = ModelHolder(Path(args.model_dir), 0.0, this_database)
    kept = []
    for name, build in (
        ("nearby index (LiveIndex)", load_index),
        ("deal book (DealBook)", load_book),
        ("model (ModelHolder)", holder.get),
    ):
        built, line = measured(name, build, args.traced)
        kept.append(built)  # held to the end: each row measures one more structure
        print(line, flush=True)
    model = holder.get()
    print(f"\nmodel: {'none in ' + args.model_dir if model is None else model.meta.get('version')}; "
          f"process at the end {psutil.Process().memory_info().rss / MB:,.0f} MB RSS")  # fmt: skip


if __name__ == "__main__":
    main()
