"""Nearby-with-deals benchmark: `/v1/nearby` with has_deal=true and sort=deal_ending against the plain page.

Run from the repository root:

    .venv/bin/python benchmarks/nearby_deals.py          # SQLite, /tmp/lbs_bench_nearby_deals.sqlite3
    .venv/bin/python benchmarks/nearby_deals.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench_deals

The database is dropped and re-migrated on every run (the script refuses to touch one it
did not make). Merchants: a synthetic city (seed.synthetic.seed_city, the merchant
service's import). Deals: a share of the merchants get one or two published deals,
bulk-inserted through SQLAlchemy Core. Every query goes through the Flask test client of
``lbs.app.create_app()`` in this process, one at a time, at an instant ``at`` pinned for
the whole run; the three modes run interleaved, query by query, on the same points:

- peer: ``/v1/nearby`` (sort=distance; the H3 index pages the merchants, one query
  attaches each one's best deal);
- ``has_deal=true``: every live deal in a lat/lon box is read, windows evaluated in Python;
- ``sort=deal_ending``: the same offers, ranked by the soonest end.

A sample of queries is checked against an oracle computed here from the inserted rows
(great-circle distances, windows evaluated independently of lbs.services.deal_schedule).
Results go to stdout and to this database kind's section of docs/benchmarks-nearby-deals.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import math
import os
import pstats
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import psycopg
from run_report import load_line, ratio, report_heading, run_facts, write_section
from scratch_database import libpq_url, reset_database
from sqlalchemy import Engine, event, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.geo.distance import EARTH_RADIUS_M, great_circle_m
from lbs.models import Deal, Merchant
from lbs.services.deals import DealWindow
from seed.synthetic import generate_city, seed_city

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "sqlite:////tmp/lbs_bench_nearby_deals.sqlite3"
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks-nearby-deals.md"
# Packages whose versions the report states.
VERSIONS_OF = ("flask", "SQLAlchemy", "psycopg", "numpy", "h3")
MARKER_TABLE = "benchmark_nearby_deals"
RADII_M = (1_000.0, 5_000.0)
LIMIT = 20
HELSINKI = ZoneInfo("Europe/Helsinki")
JITTER_M = 300.0  # query points: a random merchant plus a Gaussian offset of this sd
WARMUP = 10  # untimed queries per mode and radius
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # the oracle's own, not the app's
_ALL = list(DAY_NAMES)
# name: (share of deals, windows). Empty windows mean the whole validity period.
WINDOW_MIX: dict[str, tuple[float, list[dict[str, Any]]]] = {
    "none (whole validity)": (0.25, []),
    "all day, Mo-Su 00:00-24:00": (0.20, [{"days": _ALL, "start": "00:00", "end": "24:00"}]),
    "evening, Mo-Su 18:00-23:00": (0.30, [{"days": _ALL, "start": "18:00", "end": "23:00"}]),
    "lunch Mo-Fr 11:00-14:00 + dinner Mo-Su 17:00-22:00": (
        0.10,
        [
            {"days": _ALL[:5], "start": "11:00", "end": "14:00"},
            {"days": _ALL, "start": "17:00", "end": "22:00"},
        ],
    ),
    "late, Th-Sa 20:00-02:00": (0.15, [{"days": ["thu", "fri", "sat"], "start": "20:00", "end": "02:00"}]),
}
KINDS = ("percent_off", "fixed_price", "cash_voucher")
MODES = {
    "plain": {"sort": "distance"},
    "has_deal": {"sort": "distance", "has_deal": "true"},
    "deal_ending": {"sort": "deal_ending"},
}
MODE_LABELS = {
    "plain": "peer: `/v1/nearby`",
    "has_deal": "`has_deal=true`",
    "deal_ending": "`sort=deal_ending`",
}


# -- database -----------------------------------------------------------------------------


def default_at(now: datetime) -> datetime:
    """The next Friday 19:30 in Helsinki after ``now``: inside every window kind but lunch and late."""
    local = now.astimezone(HELSINKI)
    day = local.date() + timedelta(days=(4 - local.weekday()) % 7)
    at = datetime(day.year, day.month, day.day, 19, 30, tzinfo=HELSINKI)
    if at <= now:
        day += timedelta(days=7)
        at = datetime(day.year, day.month, day.day, 19, 30, tzinfo=HELSINKI)
    return at.astimezone(UTC)


def deal_rows(
    merchant_ids: npt.NDArray[np.int64], share: float, now: datetime, at: datetime, seed: int
) -> list[dict[str, Any]]:
    """1-2 published deals for a seeded share of the merchants; validity spans now and ``at``."""
    rng = np.random.default_rng([seed, 1])
    chosen = np.sort(rng.choice(merchant_ids, size=round(share * len(merchant_ids)), replace=False))
    names = list(WINDOW_MIX)
    shares = np.array([WINDOW_MIX[n][0] for n in names])
    for _, windows in WINDOW_MIX.values():  # the fixture's windows pass the API's validation
        for window in windows:
            DealWindow.model_validate(window)
    later = max(now, at)
    rows: list[dict[str, Any]] = []
    for merchant_id in chosen.tolist():
        for _ in range(1 + int(rng.random() < 0.5)):
            n = len(rows) + 1
            list_price = int(rng.integers(10, 100)) * 50
            discount = int(rng.integers(10, 61))
            limited = rng.random() < 0.3
            total = int(rng.integers(10, 201)) if limited else None
            if total is not None:
                claimed = total if rng.random() < 0.1 else int(rng.integers(0, total))  # 10% sold out
            else:
                claimed = int(rng.integers(0, 50))
            rows.append(
                {
                    "merchant_id": merchant_id,
                    "title": f"Bench deal {n}: -{discount} %",
                    "description": None if n % 3 else "Synthetic benchmark deal.",
                    "kind": KINDS[n % len(KINDS)],
                    "currency": "EUR",
                    "list_price_minor": list_price,
                    "deal_price_minor": list_price * (100 - discount) // 100,
                    "quantity_total": total,
                    "quantity_claimed": claimed,
                    "per_user_limit": 1 + n % 3,
                    "valid_from": now - timedelta(minutes=int(rng.integers(60, 3 * 24 * 60))),
                    "valid_until": later + timedelta(hours=int(rng.integers(24, 60 * 24))),
                    "windows": WINDOW_MIX[names[int(rng.choice(len(names), p=shares))]][1],
                    "redeem_within_minutes": (None, 60, 120)[n % 3],
                    "status": "published",
                    "ended_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    return rows


@dataclass
class Loaded:
    merchants: int
    deals: int
    merchants_with_deals: int
    load_s: float
    deals_s: float
    analyze: str


def load(url: str, n: int, share: float, now: datetime, at: datetime, seed: int) -> Loaded:
    engine = make_engine(url)
    try:
        print(f"loading {n:,} merchants through seed.synthetic.seed_city ...", flush=True)
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            written = seed_city(session, n, now, seed=seed)
        load_s = time.perf_counter() - started
        with engine.connect() as conn:
            ids = np.array(conn.execute(select(Merchant.id).order_by(Merchant.id)).scalars().all())
        assert written == n == len(ids), (written, n, len(ids))
        rows = deal_rows(ids, share, now, at, seed)
        started = time.perf_counter()
        with engine.begin() as conn:
            for start in range(0, len(rows), 5_000):
                conn.execute(insert(Deal), rows[start : start + 5_000])
        deals_s = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE merchants")
                conn.execute("VACUUM ANALYZE deals")
            analyze = "VACUUM ANALYZE merchants, deals after loading (as autovacuum would soon)"
        else:
            analyze = "no ANALYZE (the app never runs it on SQLite)"
    finally:
        engine.dispose()
    with_deals = len({r["merchant_id"] for r in rows})
    print(
        f"loaded {n:,} merchants in {load_s:.1f} s; {len(rows):,} deals of {with_deals:,} merchants "
        f"in {deals_s:.1f} s",
        flush=True,
    )
    return Loaded(n, len(rows), with_deals, load_s, deals_s, analyze)


# -- the oracle ---------------------------------------------------------------------------


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def in_windows(windows: Sequence[dict[str, Any]], local: datetime) -> bool:
    """Inside a window at this local time (days name the day a window starts); DST gaps ignored."""
    if not windows:
        return True
    weekday, minute = local.weekday(), local.hour * 60 + local.minute + local.second / 60
    for window in windows:
        days = {DAY_NAMES.index(d) for d in window["days"]}
        start, end = _minutes(window["start"]), _minutes(window["end"])
        if end > start:
            if weekday in days and start <= minute < end:
                return True
        elif (weekday in days and minute >= start) or ((weekday - 1) % 7 in days and minute < end):
            return True
    return False


@dataclass
class Oracle:
    """Every deal as inserted; which are claimable at ``at``; merchants' positions."""

    at: datetime
    deal_merchant: npt.NDArray[np.int64]
    deal_lat: npt.NDArray[np.float64]
    deal_lon: npt.NDArray[np.float64]
    deal_live: npt.NDArray[np.bool_]  # what offers_near's SQL keeps (before windows and the circle)
    claimable: dict[int, int]  # merchant -> best discount_pct of its claimable deals
    position: dict[int, tuple[float, float]]  # merchants with deals

    @classmethod
    def build(cls, url: str, at: datetime) -> Oracle:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(
                        Deal.merchant_id, Merchant.lat, Merchant.lon, Merchant.timezone, Deal.valid_from,
                        Deal.valid_until, Deal.quantity_total, Deal.quantity_claimed, Deal.windows,
                        Deal.list_price_minor, Deal.deal_price_minor,
                    )
                    .join(Merchant, Merchant.id == Deal.merchant_id)
                    .where(Deal.status == "published", Merchant.status == "active")
                ).all()  # fmt: skip
        finally:
            engine.dispose()
        live: list[bool] = []
        claimable: dict[int, int] = {}
        position: dict[int, tuple[float, float]] = {}
        zones: dict[str, ZoneInfo] = {}
        for merchant, lat, lon, tz, start, until, total, claimed, windows, listed, price in rows:
            position[merchant] = (lat, lon)
            ok = start <= at < until and (total is None or claimed < total)
            live.append(ok)
            local = at.astimezone(zones.setdefault(tz, ZoneInfo(tz)))
            if ok and in_windows(windows, local):
                pct = round(100 * (1.0 - price / listed))
                claimable[merchant] = max(claimable.get(merchant, -1), pct)
        return cls(
            at,
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.float64),
            np.array([r[2] for r in rows], dtype=np.float64),
            np.array(live, dtype=bool),
            claimable,
            position,
        )

    def near(self, lat: float, lon: float, radius_m: float) -> list[tuple[float, int]]:
        """(distance, merchant) of merchants with a claimable deal within the radius, nearest first."""
        found = []
        for merchant in self.claimable:
            d = great_circle_m(lat, lon, *self.position[merchant])
            if d <= radius_m:
                found.append((d, merchant))
        return sorted(found)

    def rows_read(self, lat: float, lon: float, radius_m: float) -> tuple[int, int]:
        """Live deals in the lat/lon box holding the circle (the rows offers_near's SQL returns,
        mirroring its _box away from the poles and the antimeridian), and those in the circle."""
        angle = radius_m / EARTH_RADIUS_M
        dlat = math.degrees(angle)
        dlon = math.degrees(math.asin(math.sin(angle) / math.cos(math.radians(abs(lat) + dlat))))
        box = self.deal_live & (np.abs(self.deal_lat - lat) <= dlat) & (np.abs(self.deal_lon - lon) <= dlon)
        in_box = np.flatnonzero(box)
        inside = sum(
            great_circle_m(lat, lon, self.deal_lat[i], self.deal_lon[i]) <= radius_m for i in in_box.tolist()
        )
        return len(in_box), int(inside)


# -- measuring ----------------------------------------------------------------------------


def query_points(n_points: int, n_merchants: int, seed: int, stream: int) -> npt.NDArray[np.float64]:
    """(lat, lon) rows near random merchants, so mostly in the city's dense centres."""
    city = generate_city(n_merchants, seed=seed)
    rng = np.random.default_rng([seed, stream])
    pick = rng.integers(0, n_merchants, size=n_points)
    jitter = rng.normal(scale=JITTER_M / 1000, size=(n_points, 2))  # km
    lats = city.lats[pick] + jitter[:, 1] / 110.574
    lons = city.lons[pick] + jitter[:, 0] / (111.320 * np.cos(np.radians(city.lats[pick])))
    return np.stack([lats, lons], axis=1)


Query = Callable[[float, float, float], dict[str, Any]]


def http_query(app: Any, mode: str, at: datetime) -> Query:
    client = app.test_client()
    extra = {"limit": LIMIT, **MODES[mode]}
    asked = itertools.count()

    def query(lat: float, lon: float, radius_m: float) -> dict[str, Any]:
        # Each request a microsecond later, as live requests each ask at their own `now`:
        # the service may reuse work within a request, not across requests.
        instant = at + timedelta(microseconds=next(asked))
        params = {"lat": lat, "lon": lon, "radius_m": radius_m, "at": instant.isoformat(), **extra}
        resp = client.get("/v1/nearby", query_string=params)
        if resp.status_code != 200:
            raise SystemExit(f"GET /v1/nearby {params} -> {resp.status_code}: {resp.get_data(as_text=True)}")
        body: dict[str, Any] = resp.get_json()
        return body

    return query


@dataclass
class Run:
    seconds: list[float] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    with_deal: list[int] = field(default_factory=list)

    @property
    def qps(self) -> float:
        return len(self.seconds) / sum(self.seconds) if self.seconds else 0.0

    @property
    def mean_ms(self) -> float:
        return 1e3 * sum(self.seconds) / len(self.seconds) if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.seconds, q) * 1e3) if self.seconds else 0.0


@dataclass
class RadiusResult:
    radius_m: float
    runs: dict[str, Run]
    planned: int
    stopped: str  # why the loop ended early, or ""
    rows_in_box: float  # mean over the measured points
    rows_in_circle: float


def measure(
    queries: dict[str, Query],
    points: npt.NDArray[np.float64],
    warmup: npt.NDArray[np.float64],
    radius_m: float,
    oracle: Oracle,
    mode_limit_s: float,
    deadline: float,
) -> RadiusResult:
    """The modes interleaved query by query on the same points, until the points, a mode's
    time limit (its summed latencies) or the run's deadline run out."""
    for query in queries.values():
        for lat, lon in warmup.tolist():
            query(lat, lon, radius_m)
    runs = {mode: Run() for mode in queries}
    clock = time.perf_counter
    stopped = ""
    done = 0
    for lat, lon in points.tolist():
        if time.monotonic() > deadline:
            stopped = "the run's time limit"
            break
        if any(sum(r.seconds) >= mode_limit_s for r in runs.values()):
            stopped = f"a mode reached {mode_limit_s:.0f} s"
            break
        for mode, query in queries.items():
            started = clock()
            body = query(lat, lon, radius_m)
            elapsed = clock() - started
            run = runs[mode]
            run.seconds.append(elapsed)
            run.totals.append(int(body["total"]))
            run.items.append(len(body["items"]))
            run.with_deal.append(sum(item["deal"] is not None for item in body["items"]))
        done += 1
    read = [oracle.rows_read(lat, lon, radius_m) for lat, lon in points[:done].tolist()]
    result = RadiusResult(
        radius_m,
        runs,
        len(points),
        stopped,
        float(np.mean([r[0] for r in read])) if read else 0.0,
        float(np.mean([r[1] for r in read])) if read else 0.0,
    )
    summary = ", ".join(f"{m} {r.qps:,.1f} QPS (p50 {r.percentile_ms(50):.1f} ms)" for m, r in runs.items())
    note = f" (stopped after {done} of {len(points)}: {stopped})" if stopped else ""
    print(f"radius {radius_m:.0f} m, {done} queries per mode: {summary}{note}", flush=True)
    return result


def check(
    queries: dict[str, Query], oracle: Oracle, points: npt.NDArray[np.float64], radius_m: float
) -> tuple[int, list[str]]:
    """Each mode's first page on the sample against the oracle; returns (queries checked, problems)."""
    problems: list[str] = []

    def problem(mode: str, i: int, what: str) -> None:
        if len(problems) < 20:
            problems.append(f"r={radius_m:.0f} m, {mode}, query {i}: {what}")

    for i, (lat, lon) in enumerate(points.tolist()):
        expected = oracle.near(lat, lon, radius_m)
        bodies = {mode: query(lat, lon, radius_m) for mode, query in queries.items()}
        for mode, body in bodies.items():
            items = body["items"]
            if mode != "plain" and body["total"] != len(expected):
                problem(mode, i, f"total {body['total']}, oracle {len(expected)}")
            for item in items:
                m = item["merchant"]
                d = great_circle_m(lat, lon, m["lat"], m["lon"])
                if d > radius_m + 1e-6:
                    problem(mode, i, f"merchant {m['id']} at {d:.3f} m, outside {radius_m:.0f} m")
                if abs(item["distance_m"] - d) > 0.01:
                    problem(mode, i, f"merchant {m['id']}: distance_m {item['distance_m']}, oracle {d:.3f}")
                deal = item["deal"]
                best = oracle.claimable.get(m["id"])
                if deal is None:
                    if mode != "plain" or best is not None:
                        problem(mode, i, f"merchant {m['id']}: deal null, oracle best -{best} %")
                    continue
                state = (deal.get("window") or {}).get("state")
                if state != "now":
                    problem(mode, i, f"merchant {m['id']}: deal {deal['id']} window.state {state!r}")
                if deal["discount_pct"] != best:
                    problem(mode, i, f"merchant {m['id']}: deal -{deal['discount_pct']} %, oracle -{best} %")
            if mode == "has_deal":
                got = [item["merchant"]["id"] for item in items]
                want = [merchant for _, merchant in expected[:LIMIT]]
                if got != want:
                    problem(mode, i, f"page {got[:5]}…, oracle {want[:5]}…")
            if mode == "deal_ending":
                ends = [datetime.fromisoformat(item["deal"]["ends_at"]) for item in items if item["deal"]]
                if any(a > b for a, b in itertools.pairwise(ends)):
                    problem(mode, i, "ends_at not ascending")
                if {item["merchant"]["id"] for item in items} - {m for _, m in expected}:
                    problem(mode, i, "a merchant without a claimable deal")
    return len(points), problems


WINDOW_COST_VALIDITY_DAYS = (7, 60, 366)


def window_costs(at: datetime, repeat: int = 50) -> list[tuple[str, list[float]]]:
    """Microseconds of one ``DealAt.of`` (state and windows of a deal, as offers_near evaluates
    every deal in the circle) per window kind and validity length, on a transient Deal."""
    from lbs.services.deal_offers import DealAt

    out = []
    for name, (_, windows) in WINDOW_MIX.items():
        row = []
        for days in WINDOW_COST_VALIDITY_DAYS:
            deal = Deal(
                id=1, merchant_id=1, title="t", kind="percent_off", currency="EUR", list_price_minor=1000,
                deal_price_minor=500, quantity_total=None, quantity_claimed=0, per_user_limit=1,
                valid_from=at - timedelta(days=1), valid_until=at + timedelta(days=days - 1),
                windows=windows, status="published", ended_at=None,
            )  # fmt: skip
            DealAt.of(deal, "Europe/Helsinki", at)
            started = time.perf_counter()
            for _ in range(repeat):
                DealAt.of(deal, "Europe/Helsinki", at)
            row.append((time.perf_counter() - started) / repeat * 1e6)
        out.append((name, row))
    return out


def profile(query: Query, points: npt.NDArray[np.float64], radius_m: float, top: int = 14) -> str:
    """cProfile over the points: the functions with the most own time, then some cumulative times."""
    prof = cProfile.Profile()
    prof.enable()
    for lat, lon in points.tolist():
        query(lat, lon, radius_m)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    header = next(i for i, line in enumerate(lines) if "ncalls" in line)
    total = next((line.strip() for line in lines if "function calls" in line), "")
    wanted = (
        ("nearby.py", "search_nearby"), ("deal_offers.py", "offers_near"), ("deal_offers.py", "of"),
        ("deal_schedule.py", "window_at"), ("deal_schedule.py", "next_window"), ("deal_schedule.py", "of"),
        ("deal_offers.py", "best_offers"), ("merchants.py", "public_merchants"),
        ("session.py", "execute"), ("result.py", "all"), ("loading.py", "instances"),
    )  # fmt: skip
    cumulative = []
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (path, _line, name), (_cc, calls, _tt, cum, _callers) in raw.items():
        if (os.path.basename(path), name) in wanted:
            cumulative.append((cum, f"{cum:8.3f} s cumulative  {calls:>8} calls  {path}:{name}"))
    cumulative.sort(reverse=True)
    per_query = f"({len(points)} queries at r={radius_m:.0f} m)"
    return "\n".join([f"{total} {per_query}", *lines[header : header + top + 1], "", "selected, cumulative:"]
                     + [line for _, line in cumulative])  # fmt: skip


def capture_sql(app: Any, query: Query, lat: float, lon: float, radius_m: float) -> str:
    """EXPLAIN of the deals query of one has_deal request, as the database plans it."""
    engine: Engine = app.extensions["lbs"].engine
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "FROM deals" in statement and "merchants.lat" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        query(lat, lon, radius_m)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    if not seen:
        return "(the deals query was not seen)"
    statement, parameters = seen[0]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return "\n".join(str(r[-1]) for r in rows)
        rows = conn.exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters).all()
        return "\n".join(str(r[0]) for r in rows)


# -- report -------------------------------------------------------------------------------


def database_info(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                sqlite_version = conn.execute(text("SELECT sqlite_version()")).scalar_one()
                mode = conn.execute(text("PRAGMA journal_mode")).scalar_one()
                return f"SQLite {sqlite_version}, journal_mode {mode}, file {make_url(url).database}"

            def show(name: str) -> str:
                return str(conn.execute(text(f"SHOW {name}")).scalar_one())

            postgis = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'"))
            return (
                f"PostgreSQL {show('server_version').split()[0]}, PostGIS {postgis.scalar_one_or_none()}, "
                f"shared_buffers {show('shared_buffers')}, work_mem {show('work_mem')}, jit {show('jit')}"
            )
    finally:
        engine.dispose()


def render(
    facts: dict[str, Any],
    results: list[RadiusResult],
    checked: int,
    problems: list[str],
    profiles: dict[str, str],
) -> str:
    args = facts["args"]
    loaded: Loaded = facts["loaded"]
    at: datetime = facts["at"]
    out = report_heading(facts, VERSIONS_OF)
    out += [
        "",
        f"- Data: {loaded.merchants:,} merchants (`seed.synthetic.seed_city`, seed {args['seed']}) loaded in "
        f"{loaded.load_s:.1f} s; {loaded.deals:,} published deals at {loaded.merchants_with_deals:,} "
        f"merchants ({args['deal_share']:.0%}), bulk-inserted in {loaded.deals_s:.1f} s; {loaded.analyze}. "
        f"Index build at app start {facts['index_build_s']:.2f} s.",
        f"- `at` = {at.isoformat()} ({at.astimezone(HELSINKI).strftime('%a %H:%M')} in Helsinki), "
        f"pinned for every query; {facts['claimable_merchants']:,} merchants have a deal claimable then.",
        f"- Queries: {args['queries']} points per radius (a random merchant plus a {JITTER_M:.0f} m Gaussian "
        f"offset, seeded), `limit={LIMIT}`, the three modes interleaved query by query after "
        f"{WARMUP} warm-up queries each; time limit {args['time_limit']:.0f} s of summed latency per mode "
        f"and radius, {args['run_limit']:.0f} s for the whole run.",
        "",
        "| radius m | mode | queries | QPS | mean ms | p50 ms | p99 ms | mean total | mean items "
        "| items with deal | QPS ÷ peer | mean ms ÷ peer |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        peer = result.runs["plain"]
        for mode, run in result.runs.items():
            n = len(run.seconds)
            cut = f" (of {result.planned})" if n < result.planned else ""
            is_peer = mode == "plain"
            out.append(
                f"| {result.radius_m:,.0f} | {MODE_LABELS[mode]} | {n}{cut} | {run.qps:,.1f} "
                f"| {run.mean_ms:.2f} | {run.percentile_ms(50):.2f} | {run.percentile_ms(99):.2f} "
                f"| {np.mean(run.totals) if n else 0:,.1f} | {np.mean(run.items) if n else 0:.1f} "
                f"| {np.mean(run.with_deal) if n else 0:.1f} "
                f"| {'—' if is_peer else ratio(run.qps, peer.qps)} "
                f"| {'—' if is_peer else ratio(run.mean_ms, peer.mean_ms)} |"
            )
    out.append("")
    for result in results:
        out.append(
            f"- r={result.radius_m:,.0f} m: the has_deal SQL returns {result.rows_in_box:,.1f} live deals "
            f"per query on average (the lat/lon box), {result.rows_in_circle:,.1f} of them within the radius "
            "(each evaluated by `DealAt.of`)"
            + (f"; stopped early: {result.stopped}" if result.stopped else "")
            + "."
        )
    verdict = "all agree" if not problems else f"**{len(problems)} problem(s)**"
    out += [
        f"- Check: {checked} queries per radius, every mode, against the oracle: {verdict}.",
        load_line(facts) + f"(measuring {facts['measure_s']:.0f} s).",
    ]
    if problems:
        out += ["", "```", *problems, "```"]
    out += ["", f"Plan of the has_deal deals query (r={RADII_M[-1]:,.0f} m, first point):", "", "```",
            facts["plan"], "```"]  # fmt: skip
    for name, text_ in profiles.items():
        out += ["", f"Profile, {name}:", "", "```", text_, "```"]
    days = WINDOW_COST_VALIDITY_DAYS
    out += [
        "",
        "One `DealAt.of` (what offers_near runs for every live deal in the circle) per window kind "
        "and validity, µs, at `at` (valid from a day before; the fixture's deals end 1-60 days after `at`):",
        "",
        "| windows | " + " | ".join(f"valid {d} d" for d in days) + " |",
        "| --- | " + " | ".join("---:" for _ in days) + " |",
    ]
    out += [
        f"| {name} | " + " | ".join(f"{us:,.0f}" for us in row) + " |" for name, row in facts["window_costs"]
    ]
    return "\n".join(out) + "\n"


HEADER = """# Nearby with deals benchmark

Written by `benchmarks/nearby_deals.py`; rerun it rather than editing. Each run replaces the
section of its database kind (PostgreSQL or SQLite) and keeps the other.

What is measured: `GET /v1/nearby` through the Flask test client of `lbs.app.create_app()` in
the benchmark process (validation, the service, the database, JSON; no HTTP server), one
query at a time, in three modes on the same points, interleaved query by query:

- **peer** `sort=distance`: the in-process H3 index pages the merchants
  (`lbs.services.nearby.search_nearby`), then one query attaches each page merchant's best
  deal (`deal_offers.best_offers`).
- **`has_deal=true`**: `deal_offers.offers_near` reads every live deal whose merchant lies in a
  lat/lon box around the circle, computes exact distances in numpy, evaluates each deal's
  windows in Python (`deal_schedule`) and pages the claimable ones by distance.
- **`sort=deal_ending`**: the same offers, ranked by the soonest `ends_at`.

*QPS* is queries over their summed latencies (one thread); *QPS ÷ peer* and *mean ms ÷ peer*
compare with the plain page measured in the same run on the same points. *mean total* is
the response's `total` (for the peer: every active merchant within the radius; otherwise:
those with a claimable deal). The database is dropped and re-created first; the deals are a
benchmark fixture bulk-inserted through SQLAlchemy Core (1-2 deals each for a seeded share
of the merchants; prices 500-4950 cents, 10-60 % off; 30 % with stock, a tenth of those sold
out; windows: none, all day, evening every day, lunch plus dinner, or late Thu-Sat).
The check compares a sample of first pages with an oracle computed by the script from the
inserted rows (great-circle distances, windows evaluated on its own): totals, pages, every
item within the radius with `deal.window.state == "now"` and the best discount.
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help="sqlite:///FILE or PostgreSQL; reset")
    parser.add_argument("--merchants", type=int, default=100_000)
    parser.add_argument("--deal-share", type=float, default=0.05, help="share of merchants with deals")
    parser.add_argument("--queries", type=int, default=500, help="Q: points per radius, each in every mode")
    parser.add_argument("--check", type=int, default=20, help="queries per radius checked against the oracle")
    parser.add_argument("--profile", type=int, default=20, help="queries per profiled mode; 0: none")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per mode and radius")
    parser.add_argument("--run-limit", type=float, default=570.0, help="seconds: no new query after that")
    parser.add_argument("--at", default="", help="ISO 8601 instant of every query (default: next Fri 19:30 "
                        "Helsinki)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="Markdown file; '-' for none")
    args = parser.parse_args()
    if not (1_000 <= args.merchants <= 5_000_000 and 0 < args.deal_share <= 1 and args.queries >= 1):
        parser.error("--merchants in 1,000..5,000,000, --deal-share in (0, 1], --queries at least 1")
    args.check = min(max(args.check, 0), args.queries)

    began = time.monotonic()
    deadline = began + args.run_limit
    now = datetime.now(UTC).replace(microsecond=0)
    at = datetime.fromisoformat(args.at).astimezone(UTC) if args.at else default_at(now)
    facts = {**run_facts("nearby_deals.py", args.database_url, args), "at": at}
    kind = facts["kind"]
    print(f"resetting {make_url(args.database_url).render_as_string(hide_password=True)} ...", flush=True)
    reset_database(args.database_url, MARKER_TABLE)
    facts["database"] = database_info(args.database_url)
    facts["loaded"] = load(args.database_url, args.merchants, args.deal_share, now, at, args.seed)
    oracle = Oracle.build(args.database_url, at)
    facts["claimable_merchants"] = len(oracle.claimable)

    from lbs.app import create_app

    app = create_app(
        test_config={
            "database_url": args.database_url,
            "secret_key": secrets.token_hex(32),
            "index_refresh_s": 1e9,  # nothing changes during the run: no change-log polls
            "log_level": "WARNING",
        }
    )
    live = app.extensions["lbs"].live_index
    if live.size != args.merchants:
        raise SystemExit(f"the index holds {live.size} merchants, expected {args.merchants}")
    facts["index_build_s"] = live.build_seconds
    queries = {mode: http_query(app, mode, at) for mode in MODES}
    points = query_points(args.queries, args.merchants, args.seed, stream=2)
    warmup = query_points(WARMUP, args.merchants, args.seed, stream=3)

    measuring = time.monotonic()
    results = [
        measure(queries, points, warmup, radius, oracle, args.time_limit, deadline) for radius in RADII_M
    ]
    facts["measure_s"] = time.monotonic() - measuring
    checked = 0
    problems: list[str] = []
    for radius in RADII_M:
        n, found = check(queries, oracle, points[: args.check], radius)
        checked, problems = n, problems + found
    print(f"check: {checked} queries per radius, {len(problems)} problem(s)", flush=True)
    far = RADII_M[-1]
    facts["plan"] = capture_sql(app, queries["has_deal"], float(points[0, 0]), float(points[0, 1]), far)
    profiles = {}
    if args.profile:
        sample = points[: args.profile]
        profiles["`has_deal=true`"] = profile(queries["has_deal"], sample, far)
        profiles["peer `/v1/nearby`"] = profile(queries["plain"], sample, far)
    facts["window_costs"] = window_costs(at)
    app.extensions["lbs"].engine.dispose()
    facts["loadavg_end"] = os.getloadavg()
    facts["total_s"] = time.monotonic() - began

    doc = render(facts, results, checked, problems, profiles)
    print("\n" + doc)
    if args.output != "-":
        write_section(Path(args.output), HEADER, kind, doc)
        print(f"written to {args.output} (section {kind})")
    if problems:
        raise SystemExit("INCORRECT: see the check above")


if __name__ == "__main__":
    main()
