"""The city of benchmarks/http_load.py: seeded and trained the first time, then the
positions, map views and users' tokens each run draws from it (seeded)."""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import secrets
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

POSITIONS = 1000
USERS = 1000
# The views case: this many distinct boxes (no worker sees one twice in a run: lbs keeps
# cluster answers, and this case measures computing them), each centred within JITTER_DEG
# of a drawn position, VIEW_PX at zoom 14 (web mercator: 360 / 2^(14 + 8) degrees a pixel).
VIEWS = 20_000
VIEW_JITTER_DEG = 0.01
VIEW_PX = (1280, 800)


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def database_name(url: str) -> str:
    return libpq(url).rsplit("/", 1)[1].split("?", 1)[0]


def merchant_count(url: str) -> int | None:
    """Active merchants, or None when there is no such database or no merchants table yet."""
    try:
        with psycopg.connect(libpq(url)) as conn:
            row = conn.execute("SELECT count(*) FROM merchants WHERE status = 'active'").fetchone()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return None
    return int(row[0]) if row else 0


def lbs_command(*argv: str) -> list[str]:
    """The `lbs` console script, run by this interpreter (so that PYTHONPATH picks the tree)."""
    return [sys.executable, "-c", "import sys; from lbs.cli import main; sys.exit(main())", *argv]


def ensure_city(args: argparse.Namespace, env: dict[str, str]) -> None:
    """Seed and train the city the first time; a database that has merchants is reused as is."""
    if merchant_count(args.database_url):
        return
    name = database_name(args.database_url)
    admin = libpq(args.database_url).rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    sizes = ["--merchants", str(args.merchants), "--users", str(args.users), "--days", "30"]
    for argv in (["db", "upgrade"], ["seed", "synthetic", *sizes], ["train"]):
        print(f"city: lbs {' '.join(argv)}", flush=True)
        subprocess.run(lbs_command(*argv), cwd=args.city_dir, env=env, check=True)


@dataclass
class City:
    merchants: int
    positions: list[tuple[float, float]]
    bbox: str  # minLon,minLat,maxLon,maxLat of the active merchants
    user_ids: list[int]
    tokens: list[str]


def views(positions: list[tuple[float, float]], seed: int) -> list[str]:
    """VIEWS distinct map views (bbox strings), each around a drawn position, jittered."""
    rng = random.Random(seed)
    degrees_per_px = 360 / 2 ** (14 + 8)
    boxes = []
    for _ in range(VIEWS):
        lat, lon = rng.choice(positions)
        lat += rng.uniform(-VIEW_JITTER_DEG, VIEW_JITTER_DEG)
        lon += rng.uniform(-VIEW_JITTER_DEG, VIEW_JITTER_DEG)
        half_w = VIEW_PX[0] / 2 * degrees_per_px
        half_h = VIEW_PX[1] / 2 * degrees_per_px * math.cos(math.radians(lat))
        boxes.append(f"{lon - half_w:.6f},{lat - half_h:.6f},{lon + half_w:.6f},{lat + half_h:.6f}")
    return boxes


def prepare_city(url: str, seed: int) -> City:
    """Positions and users drawn with a seeded RNG, and the users' benchmark tokens set."""
    rng = random.Random(seed)
    with psycopg.connect(libpq(url)) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM merchants WHERE status = 'active' ORDER BY id")]
        chosen = rng.sample(ids, min(POSITIONS, len(ids)))
        at = dict(
            (r[0], (r[1], r[2]))
            for r in conn.execute("SELECT id, lat, lon FROM merchants WHERE id = ANY(%s)", (chosen,))
        )
        extent = conn.execute(
            "SELECT min(lon), min(lat), max(lon), max(lat) FROM merchants WHERE status = 'active'"
        ).fetchone()
        assert extent is not None
        with_history = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT user_id FROM events WHERE kind IN ('visit', 'redemption')"
                " AND user_id IS NOT NULL ORDER BY user_id"
            )
        ]
        users = rng.sample(with_history, min(USERS, len(with_history)))
        # Same form and hash as lbs.services.users.create_user: "lbs_ut_" + random, SHA-256 hex.
        tokens = ["lbs_ut_" + secrets.token_urlsafe(32) for _ in users]
        conn.execute(
            "UPDATE users SET token_sha256 = t.digest FROM unnest(%s::bigint[], %s::text[]) AS t(id, digest)"
            " WHERE users.id = t.id",
            (users, [hashlib.sha256(t.encode()).hexdigest() for t in tokens]),
        )
    return City(
        len(ids),
        [at[i] for i in chosen],
        ",".join(f"{v:.6f}" for v in extent),
        users,
        tokens,
    )


def stored_impressions(url: str, user_ids: Sequence[int]) -> int:
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE kind = 'impression' AND user_id = ANY(%s)", (list(user_ids),)
        ).fetchone()
    return int(row[0]) if row else 0
