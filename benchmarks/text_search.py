"""Text search benchmark: /v1/nearby with q, without q, and PostgreSQL full text, through
gunicorn and wrk in one run.

    .venv/bin/python benchmarks/text_search.py                       # 1,000,000 merchants
    .venv/bin/python benchmarks/text_search.py --merchants 50000 --duration 5 --output -

The city: `lbs seed synthetic`'s merchants (the bulk path, merchants only) in a PostgreSQL
database this benchmark owns (lbs_bench_text; reused while it holds the same N and seed),
renamed with names a city has ("Pizzeria Kalomä", "Sanenki Café 2": a kind of place for
its category and one or two made-up proper names, Zipf-distributed, some accented), since
the generator's "Restaurant #123" would make every search a category search. For the peer
the same database gets a column of its own, ``search_words``: the tsvector of the
unaccented name and category ('simple' configuration), GIN-indexed.

The servers: `lbs serve` (gunicorn, W workers, its default threads) and the plain PostGIS
peer (benchmarks/peer/app.py, the same workers, 4 threads and a pool), whose /search is
what one writes with PostgreSQL's full text: the GIN match and ST_DWithin, ORDER BY the
KNN distance, LIMIT 20. lbs answers sort=distance (the same order) and also counts every
match in the radius (total), which the peer does not. Each case runs wrk over 1,000
positions (merchants' own, so searches land where the merchants are) with one query each,
after a warm-up; a sample of first pages is compared: the peer's 20 ids against lbs's.

Queries: a kind of place ("pizzeria"), the beginning of a proper name as typed ("kal"),
and both ("sushi ma"); plus the same positions without q, and with q by relevance.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import psycopg
from http_city import lbs_command
from http_servers import drain, free_port, get, memory, running
from http_wrk import Load, Wrk, requests_file, run_wrk
from run_report import git_state, machine
from scratch_database import libpq_url, reset_database
from sqlalchemy.orm import Session

from lbs.db import make_engine
from lbs.search.word_table import WordTableBuilder
from lbs.search.words import category_words, merchant_words
from seed import loader

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench_text"
MARKER = "lbs_bench_text_marker"
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks-text-search.md"
PEER_DIR = Path(__file__).resolve().parent / "peer"
PEER_THREADS = 4
RADII_M = (1_000, 5_000)

KINDS = {
    "restaurant": ["Pizzeria", "Trattoria", "Ravintola", "Sushi", "Ramen", "Bistro", "Grill", "Thai"],
    "cafe": ["Café", "Kahvila", "Coffee", "Espresso", "Teahouse"],
    "fast_food": ["Burger", "Kebab", "Pizza", "Taco", "Falafel", "Grilli"],
    "bar": ["Bar", "Pub", "Baari", "Olut", "Winebar"],
    "bakery": ["Bakery", "Leipomo", "Bäckerei", "Pâtisserie", "Konditoria"],
    "grocery": ["Market", "Grocery", "Deli", "Kauppa", "Halli"],
    "fashion": ["Boutique", "Fashion", "Vaate", "Shoes", "Denim"],
    "beauty": ["Salon", "Kampaamo", "Beauty", "Nails", "Barber"],
    "health": ["Apteekki", "Pharmacy", "Clinic", "Dental", "Optiikka"],
    "fitness": ["Gym", "Fitness", "Yoga", "Crossfit", "Sali"],
    "entertainment": ["Cinema", "Bowling", "Karaoke", "Arcade"],
    "culture": ["Museum", "Gallery", "Theatre", "Library"],
    "lodging": ["Hotel", "Hostel", "Guesthouse", "Inn"],
    "services": ["Laundry", "Repair", "Print", "Locksmith"],
    "electronics": ["Electronics", "Phone", "Computer", "Audio"],
    "home": ["Interior", "Furniture", "Lamp", "Design"],
    "other": ["Shop", "Store", "Studio"],
}  # fmt: skip
SYLLABLES = ["ka", "lo", "mä", "ki", "ri", "sa", "nen", "la", "pe", "tu", "ö", "vi", "ja", "ro", "ma", "ne",
             "li", "sé", "ba", "do", "ko", "ha", "il", "mi"]  # fmt: skip


def proper_names(rng: np.random.Generator) -> list[str]:
    """Made-up proper names of two or three syllables, most common first (Zipf's ranks)."""
    names = [a + b for a in SYLLABLES for b in SYLLABLES] + [
        a + b + c for a in SYLLABLES for b in SYLLABLES[:12] for c in SYLLABLES[:8]
    ]
    order = rng.permutation(len(names))
    return [names[i].capitalize() for i in order]


def city_names(categories: list[str], seed: int) -> list[str]:
    rng = np.random.default_rng([seed, 17])
    propers = proper_names(rng)
    n = len(categories)
    # Zipf ranks, cut at the vocabulary: a few names are everywhere, most are rare.
    first = np.minimum(rng.zipf(1.3, n), len(propers)) - 1
    second = np.minimum(rng.zipf(1.3, n), len(propers)) - 1
    shape = rng.random(n)
    kind_pick = rng.integers(0, 1 << 30, n)
    names = []
    for i, category in enumerate(categories):
        kinds = KINDS[category]
        kind, a, b = kinds[kind_pick[i] % len(kinds)], propers[first[i]], propers[second[i]]
        if shape[i] < 0.45:
            names.append(f"{kind} {a}")
        elif shape[i] < 0.75:
            names.append(f"{a} {kind}")
        elif shape[i] < 0.9:
            names.append(f"{a} {b} {kind}")
        else:
            names.append(f"{kind} {a} {1 + kind_pick[i] % 9}")
    return names


def prepare_city(url: str, n: int, seed: int) -> dict[str, float]:
    """The city in its database, reused while the marker says the same N and seed."""
    conninfo = libpq_url(url)
    try:
        with psycopg.connect(conninfo) as conn:
            row = conn.execute(f"SELECT merchants, seed, load_s FROM {MARKER}").fetchone()
        if row is not None and (row[0], row[1]) == (n, seed):
            print(f"reusing the city: {n:,} merchants, seed {seed}", flush=True)
            return {"load_s": float(row[2])}
    except psycopg.Error:
        pass
    started = time.perf_counter()
    reset_database(url, MARKER)
    engine = make_engine(url)
    with Session(engine) as session:
        loader.load(
            session, loader.Spec(n, 0, 1, seed), datetime.now(UTC), b"", lambda s: print(s, flush=True)
        )
        session.commit()
    engine.dispose()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        ids_categories = conn.execute("SELECT id, category FROM merchants ORDER BY id").fetchall()
        names = city_names([c for _, c in ids_categories], seed)
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        conn.execute("CREATE TEMP TABLE renamed (id bigint PRIMARY KEY, name text)")
        with conn.cursor().copy("COPY renamed (id, name) FROM STDIN") as copy:
            for (merchant_id, _), name in zip(ids_categories, names, strict=True):
                copy.write_row((merchant_id, name))
        conn.execute("ALTER TABLE merchants ADD COLUMN search_words tsvector")
        conn.execute(
            "UPDATE merchants m SET name = r.name, search_words = "
            "to_tsvector('simple', unaccent(r.name || ' ' || replace(m.category, '_', ' '))) "
            "FROM renamed r WHERE r.id = m.id"
        )
        conn.execute("CREATE INDEX ix_merchants_search_words ON merchants USING gin (search_words)")
        conn.execute("VACUUM ANALYZE merchants")
        load_s = time.perf_counter() - started
        conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (created_at VARCHAR(40))")
        conn.execute(
            f"ALTER TABLE {MARKER} ADD COLUMN merchants int, ADD COLUMN seed int, ADD COLUMN load_s float8"
        )
        conn.execute(f"UPDATE {MARKER} SET merchants = %s, seed = %s, load_s = %s", (n, seed, load_s))
    print(f"city loaded and renamed in {load_s:.0f} s", flush=True)
    return {"load_s": load_s}


@dataclass
class Sample:
    positions: list[tuple[float, float]]
    queries: dict[str, list[str]]  # per query kind, one per position
    frequency: dict[str, float]  # per query kind: mean share of merchants matching


def draw_sample(url: str, n_positions: int, seed: int) -> Sample:
    """Positions of random merchants, and per query kind one query each, drawn from the names."""
    rng = random.Random(seed)
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT lat, lon, name FROM merchants TABLESAMPLE BERNOULLI (1) REPEATABLE (%s) LIMIT 20000",
            (seed,),
        ).fetchall()
        total = conn.execute("SELECT count(*) FROM merchants").fetchone()
    positions = [(r[0], r[1]) for r in rng.sample(rows, n_positions)]
    # Not the words lbs also finds as a category's name ("gym" finds every fitness merchant):
    # the peer's tsvector has the category's slug only, and the two would answer differently.
    named = set().union(*(category_words(c) for c in KINDS))
    kinds = sorted(
        {k for ks in KINDS.values() for k in ks if k.isascii() and k.isalpha() and k.lower() not in named}
    )
    names = [r[2] for r in rows]
    every_kind = {k for ks in KINDS.values() for k in ks}

    def proper(name: str) -> str:
        return next(w for w in name.split() if w not in every_kind and w.isalpha())

    word = [rng.choice(kinds).lower() for _ in positions]
    prefix = [proper(rng.choice(names))[:3].lower() for _ in positions]
    both = []
    for _ in positions:
        parts = rng.choice(names).split()
        kind = next((p for p in parts if p in kinds), None)
        both.append(f"{(kind or rng.choice(kinds)).lower()} {proper(' '.join(parts))[:2].lower()}")
    queries = {"word": word, "prefix": prefix, "two words": both}
    frequency = {}
    with psycopg.connect(libpq_url(url)) as conn:
        for kind, texts in queries.items():
            shares = []
            for text in sorted(set(texts))[:20]:
                tsq = " & ".join(text.split()) + ":*"
                found = conn.execute(
                    "SELECT count(*) FROM merchants WHERE search_words @@ to_tsquery('simple', unaccent(%s))",
                    (tsq,),
                ).fetchone()
                shares.append(found[0] / total[0])
            frequency[kind] = float(np.mean(shares))
    return Sample(positions, queries, frequency)


def word_index_footprint(url: str) -> dict[str, float]:
    """Build the word index as a worker does, from every active merchant's name and category."""
    started = time.perf_counter()
    builder = WordTableBuilder()
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor(name="words") as cursor:
        cursor.itersize = 50_000
        cursor.execute("SELECT id, name, category FROM merchants WHERE status = 'active'")
        for merchant_id, name, category in cursor:
            builder.add(merchant_id, merchant_words(name, category))
    table = builder.build()
    return {
        "build_s": time.perf_counter() - started,
        "mb": table.nbytes / 2**20,
        "words": len(table.vocabulary),
        "postings": len(table),
    }


@dataclass
class Case:
    radius_m: int
    name: str
    server: str
    run: Wrk
    agree: str = ""


def nearby_path(lat: float, lon: float, radius_m: int, **params: str) -> str:
    return "/v1/nearby?" + urlencode({"lat": lat, "lon": lon, "radius_m": radius_m, "limit": 20, **params})


def peer_path(lat: float, lon: float, radius_m: int, q: str) -> str:
    return "/search?" + urlencode({"lat": lat, "lon": lon, "radius_m": radius_m, "q": q})


def agreement(lbs_port: int, peer_port: int, sample: Sample, radius_m: int, kind: str, n: int = 50) -> str:
    """How many of n first pages hold the same 20 ids in lbs (sort=distance) and the peer."""
    import json

    same = 0
    for (lat, lon), q in list(zip(sample.positions, sample.queries[kind], strict=True))[:n]:
        status, body = get(lbs_port, nearby_path(lat, lon, radius_m, q=q, sort="distance"))
        peer_status, peer_body = get(peer_port, peer_path(lat, lon, radius_m, q))
        assert status == 200 and peer_status == 200, (status, peer_status, body[:300], peer_body[:300])
        ours = [i["merchant"]["id"] for i in json.loads(body)["items"]]
        theirs = [i["id"] for i in json.loads(peer_body)["items"]]
        same += ours == theirs
    return f"{same} / {n}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL, owned by this benchmark")
    parser.add_argument("--merchants", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of lbs and of the peer")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per case")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per case")
    parser.add_argument("--positions", type=int, default=1000)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="Markdown page; '-' for none")
    args = parser.parse_args()
    began = time.monotonic()
    facts = {
        "command": shlex.join([".venv/bin/python", "benchmarks/text_search.py", *sys.argv[1:]]),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_state(),
        "machine": machine("gunicorn", "Flask", "psycopg"),
        "loadavg": " / ".join(f"{v:.1f}" for v in os.getloadavg()),
    }
    city = prepare_city(args.database_url, args.merchants, args.seed)
    sample = draw_sample(args.database_url, args.positions, args.seed)
    footprint = word_index_footprint(args.database_url)
    print(f"word index: {footprint}", flush=True)
    load = Load(args.connections, 10, close=False)
    lbs_port, peer_port = free_port(), free_port()
    env = {**os.environ, "LBS_DATABASE_URL": args.database_url, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    peer_env = {**os.environ, "PEER_DATABASE_URL": args.database_url, "PEER_POOL_SIZE": str(PEER_THREADS)}
    peer_command = [
        sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--threads", str(PEER_THREADS),
        "--bind", f"127.0.0.1:{peer_port}", "app:create_app()",
    ]  # fmt: skip
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="lbs-bench-text-") as tmp_name:
        tmp = Path(tmp_name)
        env.update(LBS_MODEL_DIR=str(tmp / "models"), LBS_SECRET_KEY_FILE=str(tmp / "secret.key"))
        serve = lbs_command("serve", "--workers", str(args.workers), "--bind", f"127.0.0.1:{lbs_port}")
        with (
            running("lbs", serve, tmp, env, lbs_port, "/readyz", tmp / "lbs.log") as lbs,
            running(
                "peer", peer_command, PEER_DIR, peer_env, peer_port, "/healthz", tmp / "peer.log"
            ) as peer,
        ):
            rss_before = memory(lbs)

            def measure(radius_m: int, name: str, server_name: str, paths: list[str]) -> Case:
                server = lbs if server_name == "lbs" else peer
                file = requests_file(tmp, f"{server_name}-{radius_m}-{len(cases)}", paths)
                run_wrk(server.port, file, args.warmup, load)
                result = run_wrk(server.port, file, args.duration, load)
                drain(server)
                case = Case(radius_m, name, server_name, result)
                print(f"{radius_m} m  {name:<40} {result.per_s:8.0f} req/s  p99 {result.p99_ms:7.1f} ms  "
                      f"errors {result.errors}", flush=True)  # fmt: skip
                cases.append(case)
                return case

            for radius_m in RADII_M:
                points = sample.positions
                measure(
                    radius_m, "no q", "lbs", [nearby_path(a, b, radius_m, sort="distance") for a, b in points]
                )
                for kind, texts in sample.queries.items():
                    pairs = list(zip(points, texts, strict=True))
                    by_distance = [nearby_path(a, b, radius_m, q=q, sort="distance") for (a, b), q in pairs]
                    measure(radius_m, f"q {kind}", "lbs", by_distance)
                    peer_case = measure(
                        radius_m, f"q {kind}", "peer", [peer_path(a, b, radius_m, q) for (a, b), q in pairs]
                    )
                    peer_case.agree = agreement(lbs_port, peer_port, sample, radius_m, kind)
                    if kind == "word":
                        measure(radius_m, f"q {kind}, sort=relevance", "lbs",
                                [nearby_path(a, b, radius_m, q=q) for (a, b), q in pairs])  # fmt: skip
            rss_after = memory(lbs)
            build_lines = [line for line in lbs.log_text().splitlines() if "nearby index:" in line]
    report = render(facts, args, city, sample, footprint, cases, rss_before, rss_after, build_lines)
    report += f"\nThe run took {time.monotonic() - began:.0f} s.\n"
    print(report)
    if args.output != "-":
        Path(args.output).write_text(report)


def render(
    facts: dict[str, str],
    args: argparse.Namespace,
    city: dict[str, float],
    sample: Sample,
    footprint: dict[str, float],
    cases: list[Case],
    rss_before: list[tuple[float, float]],
    rss_after: list[tuple[float, float]],
    build_lines: list[str],
) -> str:
    out = io.StringIO()
    w = out.write
    w("# Benchmark: text search (q)\n\n")
    w("Generated by `benchmarks/text_search.py` (its docstring has the method). Do not edit by hand; "
      "docs/nearby.md explains the design these figures chose.\n\n")  # fmt: skip
    w(f"- command: `{facts['command']}`\n- when: {facts['when']}, commit {facts['commit']}\n")
    w(f"- machine: {facts['machine']}; load average at the start {facts['loadavg']}\n")
    w(f"- {args.merchants:,} merchants (seed {args.seed}); {args.workers} gunicorn workers each; "
      "wrk, 1 thread, "
      f"{args.connections} connections, {args.warmup} s warm-up then {args.duration} s per case, "
      f"over {len(sample.positions)} positions\n")  # fmt: skip
    w(f"- city loaded and renamed in {city['load_s']:.0f} s (when it was made)\n\n")
    w("Queries, one per position, and the mean share of all merchants that match one:\n\n")
    for kind, texts in sample.queries.items():
        w(f"- {kind}: e.g. `{texts[0]}`, `{texts[1]}`, `{texts[2]}`: {100 * sample.frequency[kind]:.2f} %\n")
    w(
        "\n| radius | query | lbs with q: req/s (p99 ms) | lbs without q | ÷ without q "
        "| PostgreSQL full text | lbs ÷ PostgreSQL | first pages identical |\n"
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    for radius_m in RADII_M:
        here = [c for c in cases if c.radius_m == radius_m]
        plain = next(c for c in here if c.name == "no q")
        for c in here:
            if c.server != "lbs" or c.name == "no q":
                continue
            peer = next((p for p in here if p.server == "peer" and p.name == c.name), None)
            ours = f"{c.run.per_s:,.0f} ({c.run.p99_ms:.1f})"
            without = f"{plain.run.per_s:,.0f} ({plain.run.p99_ms:.1f})"
            theirs = "— | — | —"
            if peer is not None:
                ratio = c.run.per_s / peer.run.per_s
                theirs = f"{peer.run.per_s:,.0f} ({peer.run.p99_ms:.1f}) | {ratio:.2f} | {peer.agree}"
            w(f"| {radius_m / 1000:g} km | {c.name} | {ours} | {without} | "
              f"{c.run.per_s / plain.run.per_s:.2f} | {theirs} |\n")  # fmt: skip
    errors = [f"{c.server} {c.name} {c.run.errors}" for c in cases if c.run.errors != "0 / 0 / 0"]
    w(f"\nErrors (non-2xx / socket / timeouts): {', '.join(errors) or 'none'}.\n")
    w(f"\nWord index over the {args.merchants:,} merchants, built in this process as a worker builds it: "
      f"{footprint['words']:,} distinct words, {footprint['postings']:,} postings, "
      f"{footprint['mb']:.0f} MB, {footprint['build_s']:.1f} s (reading the rows included).\n")  # fmt: skip
    w("lbs workers, RSS / PSS MB, after start: "
      + ", ".join(f"{r:.0f} / {p:.0f}" for r, p in rss_before) + "; after the run: "
      + ", ".join(f"{r:.0f} / {p:.0f}" for r, p in rss_after) + ".\n")  # fmt: skip
    if build_lines:
        w(
            "Index builds (lbs's log): "
            + "; ".join(line.split("nearby index:")[1].strip() for line in build_lines)
            + ".\n"
        )
    return out.getvalue()


if __name__ == "__main__":
    main()
