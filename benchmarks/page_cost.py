"""What one page costs in one process, without HTTP: lbs's app and the plain PostGIS peer
(benchmarks/peer/) each answering the same positions through Flask's test client, one
request at a time, in the same run.

This is the part of a request that the whole-request benchmark (http_load.py) cannot
separate from wrk, gunicorn and PostgreSQL sharing the cores: the worker's own time per
page, which is what bounds its throughput once a page needs no database round trip. The
peer's figure includes the round trip to PostgreSQL and PostgreSQL's own work (same
process view: wall time), lbs's the round trips it still makes (polls, cache misses).

    .venv/bin/python benchmarks/page_cost.py            # the city of http_load.py in lbs_bench
    .venv/bin/python benchmarks/page_cost.py --pages 2000 --cases distance-1km,relevance-user-1km

Needs the city http_load.py seeds and trains (`--city-dir`, the same default). Personalised
pages use users with visits, given benchmark tokens as http_load.py does (their SHA-256
written to users.token_sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench"
CASES = {
    "distance-1km": "/v1/nearby?lat={lat}&lon={lon}&radius_m=1000&sort=distance",
    "distance-5km": "/v1/nearby?lat={lat}&lon={lon}&radius_m=5000&sort=distance",
    "relevance-anon-1km": "/v1/nearby?lat={lat}&lon={lon}&radius_m=1000",
    "relevance-user-1km": "/v1/nearby?lat={lat}&lon={lon}&radius_m=1000",
    "has-deal-1km": "/v1/nearby?lat={lat}&lon={lon}&radius_m=1000&has_deal=true",
}
PEER = "/nearby?lat={lat}&lon={lon}&radius_m={r}"


def positions(url: str, n: int, seed: int) -> list[tuple[float, float]]:
    """n merchants' own positions, drawn with a seeded RNG (every page lands in the city)."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT lat, lon FROM merchants WHERE status = 'active' AND id %% 97 = 0", ()
        ).fetchall()
    return random.Random(seed).sample(rows, n)


def tokens(url: str, n: int) -> list[str]:
    """n users with visits, each given a fresh token (benchmark only)."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        users = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT user_id FROM events WHERE kind = 'visit' AND user_id IS NOT NULL "
                "ORDER BY user_id LIMIT %s",
                (n,),
            )
        ]
        fresh = ["lbs_ut_" + secrets.token_urlsafe(32) for _ in users]
        for user_id, token in zip(users, fresh, strict=True):
            digest = hashlib.sha256(token.encode()).hexdigest()
            conn.execute("UPDATE users SET token_sha256 = %s WHERE id = %s", (digest, user_id))
    return fresh


def per_page_ms(client: Any, paths: list[str], headers: list[dict[str, str]], pages: int) -> list[float]:
    """Warm (one pass over the positions), then time ``pages`` pages one by one."""
    for i, path in enumerate(paths):
        assert client.get(path, headers=headers[i % len(headers)]).status_code == 200
    times = []
    for i in range(pages):
        started = time.perf_counter()
        response = client.get(paths[i % len(paths)], headers=headers[i % len(headers)])
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)[:200]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--city-dir", default=str(Path(tempfile.gettempdir()) / "lbs-bench-city"))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--pages", type=int, default=1000, help="timed pages per case")
    parser.add_argument("--positions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    city = Path(args.city_dir).resolve()
    os.environ.update(
        LBS_DATABASE_URL=args.database_url,
        LBS_MODEL_DIR=str(city / "lbs-models"),
        LBS_SECRET_KEY_FILE=str(city / "lbs-secret.key"),
        PEER_DATABASE_URL=args.database_url,
        PEER_POOL_SIZE="1",
    )
    sys.path.insert(0, str(ROOT / "benchmarks" / "peer"))
    from app import create_app as create_peer

    from lbs.app import create_app

    where = positions(args.database_url, args.positions, args.seed)
    users = tokens(args.database_url, args.positions)
    lbs, peer = create_app().test_client(), create_peer().test_client()
    print(f"{len(where)} positions, {len(users)} users; {args.pages} timed pages per case, one at a time")
    print("| case | lbs ms/page (p50 / mean) | peer ms/page (p50 / mean) | peer ÷ lbs (mean) |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.cases.split(","):
        radius = 5000 if "5km" in name else 1000
        paths = [CASES[name].format(lat=lat, lon=lon) for lat, lon in where]
        headers = [{"Authorization": f"Bearer {t}"} for t in users] if name.endswith("user-1km") else [{}]
        ours = per_page_ms(lbs, paths, headers, args.pages)
        theirs = per_page_ms(
            peer, [PEER.format(lat=lat, lon=lon, r=radius) for lat, lon in where], [{}], args.pages
        )
        print(
            f"| {name} | {statistics.median(ours):.2f} / {statistics.fmean(ours):.2f} "
            f"| {statistics.median(theirs):.2f} / {statistics.fmean(theirs):.2f} "
            f"| {statistics.fmean(theirs) / statistics.fmean(ours):.2f} |"
        )


if __name__ == "__main__":
    main()
