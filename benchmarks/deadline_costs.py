"""What bounding statements by the request's deadline costs (lbs.db + lbs.deadline), each case
against its peer measured in the same run, interleaved, median of rounds.

    .venv/bin/python benchmarks/deadline_costs.py            # lbs_bench (read only) and SQLite
    .venv/bin/python benchmarks/deadline_costs.py --database-url postgresql+psycopg://…

PostgreSQL, per request (check out a connection, read 20 merchants by id, give it back):
  plain              an engine without deadlines (the peer)
  early              the serving engine, early in the request's deadline: the connection's
                     own statement_timeout bounds the statement, nothing is sent
  late               the serving engine, late in the deadline: SET statement_timeout before
                     the statement, RESET when the connection returns to the pool
  transaction        BEGIN, the read, COMMIT with the plain engine (the next case's peer)
  set local          the alternative: a SET LOCAL in every request's transaction
SQLite: a statement of a million steps, with and without the progress handler that stops a
statement at its deadline.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text

from lbs import deadline
from lbs.db import make_engine

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_bench"
TIMEOUT_S = 5.0
READ = text("SELECT id, name, lat, lon FROM merchants WHERE id = ANY(:ids)")
MILLION_STEPS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) SELECT count(*) FROM n"
)


def per_call_us(run: Callable[[], None], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - started) / calls * 1e6


def compare(cases: dict[str, Callable[[], None]], calls: int, rounds: int) -> dict[str, float]:
    """Median microseconds per call of each case, the cases interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for run in cases.values():
        run()  # warm: connections made, plans cached
    for _ in range(rounds):
        for name, run in cases.items():
            times[name].append(per_call_us(run, calls))
    return {name: statistics.median(values) for name, values in times.items()}


def postgresql_cases(url: str) -> tuple[dict[str, Callable[[], None]], list[Engine]]:
    plain = make_engine(url, pool_size=1)
    serving = make_engine(url, request_timeout_s=TIMEOUT_S, pool_size=1)
    ids = {"ids": list(range(1, 21))}

    def read(engine: Engine) -> None:
        with engine.connect() as connection:
            connection.execute(READ, ids).all()

    def early() -> None:
        with deadline.within(TIMEOUT_S):
            read(serving)

    def late() -> None:
        with deadline.within(TIMEOUT_S / 2):
            read(serving)

    def set_local() -> None:
        with plain.begin() as connection:
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(TIMEOUT_S * 1000)}")
            connection.execute(READ, ids).all()

    def in_transaction() -> None:
        with plain.begin() as connection:
            connection.execute(READ, ids).all()

    cases = {
        "plain": lambda: read(plain),
        "early": early,
        "late": late,
        "transaction": in_transaction,
        "set local": set_local,
    }
    return cases, [plain, serving]


def sqlite_cases(directory: Path) -> tuple[dict[str, Callable[[], None]], list[Engine]]:
    url = f"sqlite:///{directory / 'steps.sqlite3'}"
    plain = make_engine(url)
    serving = make_engine(url, request_timeout_s=TIMEOUT_S)

    def steps(engine: Engine) -> None:
        with engine.connect() as connection, deadline.within(TIMEOUT_S):
            connection.exec_driver_sql(MILLION_STEPS).scalar_one()

    return {"plain": lambda: steps(plain), "progress handler": lambda: steps(serving)}, [plain, serving]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    cases, engines = postgresql_cases(args.database_url)
    pg = compare(cases, args.calls, args.rounds)
    print(f"PostgreSQL, µs per request (median of {args.rounds} rounds of {args.calls}):")
    peers = {"plain": "plain", "early": "plain", "late": "plain", "transaction": "transaction"}
    for name, peer in {**peers, "set local": "transaction"}.items():
        print(f"  {name:<12} {pg[name]:>8.0f}   {pg[name] / pg[peer]:.2f}x {peer}")
    with tempfile.TemporaryDirectory() as directory:
        cases, more = sqlite_cases(Path(directory))
        lite = compare(cases, max(1, args.calls // 100), args.rounds)
        print("SQLite, ms per million-step statement:")
        for name in cases:
            print(f"  {name:<16} {lite[name] / 1000:>8.1f}   {lite[name] / lite['plain']:.3f}x plain")
        for engine in [*engines, *more]:
            engine.dispose()


if __name__ == "__main__":
    main()
