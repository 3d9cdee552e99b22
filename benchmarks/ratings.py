"""What ratings cost a worker: the rating table's computation after a change, a page's
ratings, min_rating over a radius; and nearby pages sorted or filtered by rating against
sort=distance, through Flask's test client on a SQLite city (no HTTP, one process).

    .venv/bin/python benchmarks/ratings.py                      # 100k rated of 200k merchants
    .venv/bin/python benchmarks/ratings.py --merchants 50000 --rated 20000 --pages 300
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from lbs import migrate  # noqa: E402
from lbs.app import create_app  # noqa: E402
from lbs.categories import CATEGORY_CODES  # noqa: E402
from lbs.db import make_engine  # noqa: E402
from lbs.models import Merchant, MerchantRating  # noqa: E402
from lbs.services.merchants import MerchantFields, import_merchants  # noqa: E402
from lbs.services.rating_table import RatingTable  # noqa: E402

CENTRE = (60.1699, 24.9384)
CATEGORIES = list(CATEGORY_CODES)


def _ms(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(0.95 * (len(ordered) - 1))] * 1000
    return f"p50 {p50:.3f} ms, p95 {p95:.3f} ms"


def table_costs(rated: int, rng: random.Random) -> None:
    """The table alone: rated merchants over ~60 x 40 km (a dozen H3 resolution-5 cells)."""
    rows = [
        (
            i,
            CENTRE[0] + rng.uniform(-0.3, 0.3),
            CENTRE[1] + rng.uniform(-0.4, 0.4),
            rng.choice(CATEGORIES),
            n := rng.randint(1, 60),
            n * rng.randint(1, 5),
            rng.randint(0, n),
        )
        for i in range(1, rated + 1)
    ]
    table = RatingTable()
    started = time.perf_counter()
    table.load(rows)
    loaded = time.perf_counter() - started
    computes, pages, radii = [], [], []
    ids = np.arange(1, rated + 1, dtype=np.int64)
    for _ in range(50):
        one = rng.choice(rows)
        table.apply([(one[0], one[1], one[2], one[3], one[4] + 1, one[5] + 5, one[6] + 1)])
        started = time.perf_counter()
        table.averages(ids[:1])  # the first read after a change computes every rating
        computes.append(time.perf_counter() - started)
        page = rng.sample(range(1, rated + 1), 20)
        started = time.perf_counter()
        table.views(page)
        pages.append(time.perf_counter() - started)
        radius = ids[rng.randrange(0, rated - 5000) :][:5000]
        started = time.perf_counter()
        kept = table.averages(radius) >= 4.0
        radii.append(time.perf_counter() - started)
        assert len(kept) == len(radius)
    print(f"rating table, {rated:,} rated merchants: load {loaded * 1000:.0f} ms")
    print(f"  every rating after a change:   {_ms(computes)}")
    print(f"  a page's 20 ratings:           {_ms(pages)}")
    print(f"  min_rating over 5,000 in a radius: {_ms(radii)}")


def page_costs(merchants: int, rated: int, pages: int, rng: random.Random) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.sqlite3"
        engine = make_engine(url)
        migrate.upgrade(engine)
        rows = [
            MerchantFields(
                name=f"m{i}",
                category=rng.choice(CATEGORIES),
                lat=CENTRE[0] + rng.uniform(-0.1, 0.1),
                lon=CENTRE[1] + rng.uniform(-0.2, 0.2),
            )
            for i in range(merchants)
        ]
        with Session(engine) as session, session.begin():
            import_merchants(session, rows, datetime.now(UTC))
            ids = list(session.scalars(Merchant.__table__.select().with_only_columns(Merchant.id)))
            totals = []
            for merchant_id in rng.sample(ids, rated):
                n = rng.randint(1, 60)
                totals.append(
                    {"merchant_id": merchant_id, "review_count": n, "rating_sum": n * rng.randint(2, 5),
                     "recommend_count": rng.randint(0, n)}
                )  # fmt: skip
            session.execute(insert(MerchantRating), totals)
        engine.dispose()
        app = create_app(
            {"database_url": url, "secret_key": "bench-secret-key-0123456789abcdef", "index_refresh_s": 1.0}
        )
        client = app.test_client()
        cases = {
            "sort=distance": "sort=distance",
            "sort=rating": "sort=rating",
            "sort=distance&min_rating=4": "sort=distance&min_rating=4",
        }
        for radius in (1000, 5000):
            for name, params in cases.items():
                times = []
                for _ in range(pages):
                    lat = CENTRE[0] + rng.uniform(-0.05, 0.05)
                    lon = CENTRE[1] + rng.uniform(-0.1, 0.1)
                    started = time.perf_counter()
                    response = client.get(f"/v1/nearby?lat={lat}&lon={lon}&radius_m={radius}&{params}")
                    times.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.get_data(as_text=True)
                print(f"  nearby {radius} m, {name:28s} {_ms(times[pages // 10 :])}")
        app.extensions["lbs"].events.close()
        app.extensions["lbs"].engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", type=int, default=200_000)
    parser.add_argument("--rated", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    table_costs(args.rated, rng)
    print(f"nearby pages, {args.merchants:,} merchants of which {args.rated:,} rated (SQLite, in process):")
    page_costs(args.merchants, args.rated, args.pages, rng)


if __name__ == "__main__":
    main()
