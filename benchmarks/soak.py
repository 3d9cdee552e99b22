"""Soak: a bounded mixed load on `lbs serve` (4 workers, PostgreSQL), then an audit.

    .venv/bin/python benchmarks/soak.py                    # 300 s on lbs_bench_soak
    .venv/bin/python benchmarks/soak.py --duration 60      # shorter

The database is made afresh (the script refuses one it did not make) and seeded with a
small synthetic city (`lbs seed synthetic`); 40 merchants get keys and a live deal each of
50 to 200 vouchers, and 200 users are made. Then client threads send, for --duration
seconds, a mix of what the service's users do: nearby pages (half with a user token),
map boxes, claims (a fifth of them retries of an earlier Idempotency-Key), redemptions of
codes claimed so far, client events (a tenth resent), merchants' edits and users' voucher
lists. Every worker's memory is sampled every 10 s.

At the end, with the server stopped (its event buffer flushed):

- answers by status, per kind of request: no 5xx allowed;
- every deal claimed within its stock, one voucher per unit, no user over its limit, and
  the 201s equal the vouchers;
- client events accepted by the API equal the rows stored for them;
- each worker's RSS slope over the second half of the run, MB per minute.

It exits 1 if any check fails. Results go to stdout; docs/reliability.md quotes a run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from claims import Reply, call
from http_city import lbs_command
from http_servers import free_port, memory, running
from scratch_database import reset_database
from sqlalchemy import text
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.services.reconciliation import check_books

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench_soak"
MARKER_TABLE = "benchmark_soak"
CENTRE = (60.1699, 24.9384)
MIX = {  # kind: share of requests
    "nearby": 0.35, "nearby-user": 0.15, "bbox": 0.10, "claim": 0.15, "redeem": 0.05,
    "events": 0.10, "merchant-edit": 0.05, "my-vouchers": 0.05,
}  # fmt: skip


class Load:
    """The shared state of the client threads: who can do what, and what came back."""

    def __init__(
        self, port: int, merchants: list[tuple[int, str, int]], users: list[tuple[int, str]]
    ) -> None:
        self.port = port
        self.merchants = merchants  # (merchant id, key, its deal id)
        self.users = users
        self.lock = threading.Lock()
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.claim_keys: list[tuple[str, int, int]] = []  # (idempotency key, user index, deal id)
        self.codes: list[tuple[str, int]] = []  # (voucher code, merchant index)
        self.created_vouchers = 0
        self.events_sent: list[dict[str, Any]] = []
        self.events_accepted = 0

    def one(self, rng: random.Random) -> None:
        kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        reply = getattr(self, kind.replace("-", "_"))(rng)
        with self.lock:
            self.statuses[kind][reply.status] += 1
            self.seconds[kind].append(reply.seconds)

    def _user(self, rng: random.Random) -> tuple[int, dict[str, str]]:
        i = rng.randrange(len(self.users))
        return i, {"Authorization": f"Bearer {self.users[i][1]}"}

    def _position(self, rng: random.Random) -> str:
        lat, lon = CENTRE[0] + rng.uniform(-0.05, 0.05), CENTRE[1] + rng.uniform(-0.1, 0.1)
        return f"lat={lat:.5f}&lon={lon:.5f}"

    def nearby(self, rng: random.Random) -> Reply:
        return call(self.port, "GET", f"/v1/nearby?{self._position(rng)}&radius_m=1000")

    def nearby_user(self, rng: random.Random) -> Reply:
        _, headers = self._user(rng)
        return call(self.port, "GET", f"/v1/nearby?{self._position(rng)}&radius_m=1000", headers)

    def bbox(self, rng: random.Random) -> Reply:
        lat, lon = CENTRE[0] + rng.uniform(-0.05, 0.05), CENTRE[1] + rng.uniform(-0.1, 0.1)
        box = f"{lon - 0.02:.5f},{lat - 0.01:.5f},{lon + 0.02:.5f},{lat + 0.01:.5f}"
        return call(self.port, "GET", f"/v1/merchants?bbox={box}&cluster=true&zoom=14")

    def claim(self, rng: random.Random) -> Reply:
        """A claim; a fifth retry an earlier claim's Idempotency-Key (the same voucher back)."""
        with self.lock:
            earlier = rng.choice(self.claim_keys) if self.claim_keys and rng.random() < 0.2 else None
        if earlier is None:
            key, user, deal = str(uuid.uuid4()), rng.randrange(len(self.users)), rng.choice(self.merchants)[2]
        else:
            key, user, deal = earlier
        headers = {"Authorization": f"Bearer {self.users[user][1]}", "Idempotency-Key": key}
        reply = call(self.port, "POST", f"/v1/deals/{deal}/claim", headers)
        with self.lock:
            if reply.status == 201:
                self.created_vouchers += 1
                merchant = next(i for i, m in enumerate(self.merchants) if m[2] == deal)
                self.codes.append((reply.json()["code"], merchant))
            if reply.status == 201 and earlier is None:
                self.claim_keys.append((key, user, deal))
        return reply

    def redeem(self, rng: random.Random) -> Reply:
        with self.lock:
            if not self.codes:
                return self.nearby(rng)
            code, merchant = self.codes.pop(rng.randrange(len(self.codes)))
        headers = {"Authorization": f"Bearer {self.merchants[merchant][1]}"}
        return call(self.port, "POST", "/v1/merchant/vouchers/redeem", headers, {"code": code})

    def events(self, rng: random.Random) -> Reply:
        """A batch of 5 visits; a tenth are an earlier batch resent by the same user."""
        with self.lock:
            earlier = rng.choice(self.events_sent) if self.events_sent and rng.random() < 0.1 else None
        if earlier is None:
            _, headers = self._user(rng)
            now = datetime.now(UTC).isoformat()
            batch = [
                {"id": uuid.uuid4().hex, "kind": "visit", "merchant_id": rng.choice(self.merchants)[0],
                 "occurred_at": now}
                for _ in range(5)
            ]  # fmt: skip
        else:
            batch, headers = earlier["batch"], earlier["headers"]
        reply = call(self.port, "POST", "/v1/events", headers, {"events": batch})
        with self.lock:
            if reply.status == 200:
                self.events_accepted += int(reply.json()["accepted"])
                if earlier is None:
                    self.events_sent.append({"batch": batch, "headers": headers})
        return reply

    def merchant_edit(self, rng: random.Random) -> Reply:
        merchant_id, key, _ = rng.choice(self.merchants)
        phone = f"+358 9 {rng.randrange(10**6):06d}"
        return call(self.port, "PATCH", f"/v1/merchants/{merchant_id}", {"Authorization": f"Bearer {key}"},
                    {"phone": phone})  # fmt: skip

    def my_vouchers(self, rng: random.Random) -> Reply:
        _, headers = self._user(rng)
        return call(self.port, "GET", "/v1/me/vouchers", headers)


def setup(
    port: int, operator_token: str, rng: random.Random
) -> tuple[list[tuple[int, str, int]], list[tuple[int, str]]]:
    operator = {"Authorization": f"Bearer {operator_token}"}
    found = call(
        port, "GET", f"/v1/nearby?lat={CENTRE[0]}&lon={CENTRE[1]}&radius_m=5000&limit=100&sort=distance"
    )
    merchant_ids = [item["merchant"]["id"] for item in found.json()["items"]][:40]
    merchants = []
    now = datetime.now(UTC)
    for merchant_id in merchant_ids:
        key = call(port, "POST", f"/v1/merchants/{merchant_id}/api-keys", operator).json()["api_key"]
        deal = {
            "title": "Soak deal", "kind": "percent_off", "currency": "EUR", "list_price_minor": 1000,
            "deal_price_minor": 700, "quantity_total": rng.randrange(50, 201),
            "per_user_limit": rng.randrange(1, 4), "valid_from": (now - timedelta(hours=1)).isoformat(),
            "valid_until": (now + timedelta(days=2)).isoformat(), "publish": True,
        }  # fmt: skip
        created = call(port, "POST", "/v1/merchant/deals", {"Authorization": f"Bearer {key}"}, deal)
        assert created.status == 201, created.body[:300]
        merchants.append((merchant_id, key, int(created.json()["id"])))
    users = []
    for _ in range(200):
        made = call(port, "POST", "/v1/users").json()
        users.append((int(made["user_id"]), str(made["token"])))
    return merchants, users


def slope_mb_per_min(samples: list[tuple[float, list[float]]]) -> list[float]:
    """Per worker, the least-squares slope of RSS over the second half of the samples."""
    half = samples[len(samples) // 2 :]
    workers = min(len(s[1]) for s in half)
    t = np.array([s[0] for s in half]) / 60
    return [float(np.polyfit(t, [s[1][w] for s in half], 1)[0]) for w in range(workers)]


def by_minute(samples: list[tuple[float, list[float]]]) -> list[float]:
    """The workers' mean RSS at the first sample of each minute: where the growth levels."""
    minutes: dict[int, float] = {}
    for at, rss in samples:
        minutes.setdefault(int(at // 60), float(np.mean(rss)))
    return list(minutes.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--duration", type=int, default=300, help="seconds of load (at most 600)")
    parser.add_argument("--merchants", type=int, default=20_000, help="of the synthetic city")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    if not 10 <= args.duration <= 600:
        raise SystemExit("--duration: 10 to 600 seconds")
    rng = random.Random(args.seed)
    reset_database(args.database_url, MARKER_TABLE)
    env = {**os.environ, "LBS_DATABASE_URL": args.database_url, "LBS_LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    seed = lbs_command(
        "seed", "synthetic", "--merchants", str(args.merchants), "--users", "500", "--days", "3"
    )
    subprocess.run(seed, env=env, check=True, stdout=subprocess.DEVNULL)
    token = "lbs_op_" + secrets.token_urlsafe(32)
    env.update(
        LBS_OPERATOR_TOKEN_SHA256=hashlib.sha256(token.encode()).hexdigest(),
        LBS_SECRET_KEY=secrets.token_hex(32),
        LBS_RATE_LIMIT_CLAIM="1000000/minute", LBS_RATE_LIMIT_REDEEM="1000000/minute",
        LBS_RATE_LIMIT_NEW_USERS="1000000/minute",  # one address makes every user here
    )  # fmt: skip
    samples: list[tuple[float, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="lbs-soak-") as tmp:
        port = free_port()
        serve = lbs_command("serve", "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}")
        with running("lbs", serve, Path(tmp), env, port, "/readyz", Path(tmp) / "lbs.log") as lbs:
            merchants, users = setup(port, token, rng)
            load = Load(port, merchants, users)
            began = time.monotonic()
            stop = began + args.duration

            def client(seed: int) -> None:
                own = random.Random(seed)
                while time.monotonic() < stop:
                    load.one(own)

            with ThreadPoolExecutor(args.clients) as pool:
                futures = [pool.submit(client, rng.randrange(2**31)) for _ in range(args.clients)]
                while any(not f.done() for f in futures):
                    samples.append((time.monotonic() - began, [rss for rss, _ in memory(lbs)]))
                    time.sleep(10)
                for f in futures:
                    f.result()
    # Stopped: the event buffers are flushed.
    engine = make_engine(args.database_url)
    with Session(engine) as session:
        books = check_books(session)
    ours = [d for _, _, d in merchants]
    with engine.connect() as conn:
        vouchers = conn.execute(
            text("SELECT count(*) FROM vouchers WHERE deal_id = ANY(:ids)"), {"ids": ours}
        ).scalar_one()
        stored = conn.execute(
            text("SELECT count(*) FROM events WHERE kind = 'visit' AND user_id = ANY(:ids)"),
            {"ids": [u for u, _ in users]},
        ).scalar_one()
    engine.dispose()

    total = sum(sum(c.values()) for c in load.statuses.values())
    rate = total / args.duration
    print(f"\n{total:,} requests in {args.duration} s ({rate:,.0f}/s), {args.clients} clients, "
          f"{args.workers} workers, {args.merchants:,} merchants\n")  # fmt: skip
    print("| request | answers | statuses | p50 / p99 ms |")
    print("| --- | ---: | --- | --- |")
    for kind in MIX:
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(load.statuses[kind].items()))
        p50, p99 = (np.percentile(load.seconds[kind], q) * 1e3 for q in (50, 99))
        print(f"| {kind} | {sum(load.statuses[kind].values()):,} | {statuses} | {p50:,.0f} / {p99:,.0f} |")
    errors = sum(n for c in load.statuses.values() for s, n in c.items() if s >= 500 or s == 0)
    slopes = slope_mb_per_min(samples)
    failures = {
        "5xx or no answer": errors,
        "deals oversold": len(books.oversold),
        "deals whose vouchers differ from their count": len(books.mismatched),
        "users over a deal's limit": len(books.over_limit),
        "201 claims minus vouchers stored": load.created_vouchers - int(vouchers),
        "events accepted minus stored": load.events_accepted - int(stored),
    }
    print()
    for what, n in failures.items():
        print(f"- {what}: {n}")
    print(f"- vouchers: {vouchers:,} over {len(ours)} deals")
    print(f"- client events: accepted {load.events_accepted:,}, stored {stored:,}")
    print(f"- RSS per worker at the end, MB: {', '.join(f'{r:.0f}' for r in samples[-1][1])}")
    print(f"- RSS slope over the second half, MB/min per worker: {', '.join(f'{s:+.2f}' for s in slopes)}")
    print(f"- mean RSS per worker by minute, MB: {', '.join(f'{m:.0f}' for m in by_minute(samples))}")
    sys.exit(1 if any(failures.values()) else 0)


if __name__ == "__main__":
    main()
