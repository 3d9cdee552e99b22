"""The `lbs` command: database, serving, merchants, seeding, training, operator token."""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from lbs import migrate
from lbs.cli_context import database, now, service_session
from lbs.cli_context import settings as load_settings
from lbs.cli_errors import Commands
from lbs.cli_insights import insights
from lbs.cli_merchants import merchants
from lbs.cli_payments import payments
from lbs.cli_seed import seed
from lbs.event_partitions import INTERVALS, PREMAKE, PartitioningUnavailable, partition_events


@click.group(cls=Commands, name="lbs")
@click.version_option(package_name="lbs", prog_name="lbs")
def main() -> None:
    """lbs: local merchants and deals near you. Configure with LBS_* environment variables."""


main.add_command(insights)
main.add_command(merchants)
main.add_command(payments)
main.add_command(seed)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="a migration (0001, 0002, …) or head")
def db_upgrade(revision: str) -> None:
    """Apply the migrations (creates the SQLite file or the PostGIS extension as needed)."""
    from lbs.services.database_identity import database_id

    known = migrate.revisions()
    if revision not in (*known, "head"):
        raise click.BadParameter(
            f"no migration {revision!r}: give one of {', '.join(known)} or head", param_hint="'--revision'"
        )
    engine = database(migrated=False)
    try:
        migrate.upgrade(engine, revision)
    except CommandError as exc:  # e.g. a revision below the database's: upgrade does not go down
        raise SystemExit(f"--revision {revision}: {exc}") from None
    at = migrate.current(engine)
    identity = ""
    if at is not None and known.index(at) >= known.index("0008"):
        with Session(engine) as session:
            identity = f" (database id {database_id(session)}, which its models record)"
    click.echo(f"database at migration {at}{identity}")


@db.command("check")
def db_check() -> None:
    """Check the books of claims: no deal over its stock, each deal's units taken equal to
    its vouchers, no user over a deal's limit (exit 1 and a line per problem otherwise)."""
    from lbs.services.reconciliation import check_books

    with service_session() as session:
        books = check_books(session)
    click.echo(f"{books.deals} deals, {books.vouchers} vouchers, {books.client_events} client events")
    for problem in books.problems():
        click.echo(problem, err=True)
    if not books.balanced:
        raise SystemExit(f"{len(books.problems())} problem(s)")
    click.echo("books balance")


@db.command("partition-events")
@click.option("--interval", type=click.Choice(INTERVALS), default="monthly", show_default=True)
@click.option(
    "--premake",
    type=click.IntRange(1, 60),
    default=PREMAKE,
    show_default=True,
    help="partitions kept made ahead of now (set when first partitioned)",
)
def db_partition_events(interval: str, premake: int) -> None:
    """PostgreSQL: partition the event log by time under pg_partman; again (daily, from cron):
    make the partitions ahead of now (docs/scaling.md)."""
    try:
        report = partition_events(database(), interval, premake)
    except PartitioningUnavailable as exc:
        raise SystemExit(f"not partitioned: {exc}") from None
    if report.converted:
        click.echo(
            f"events partitioned by occurred_at ({interval}): {report.rows_moved:,} rows moved into "
            f"{report.partitions} partitions in {report.seconds:.1f} s"
        )
    else:
        click.echo(f"events already partitioned; maintenance run: {report.partitions} partitions")
    if report.rows_in_default:
        click.echo(
            f"{report.rows_in_default:,} events lie in events_default, outside every partition: "
            "maintenance fell behind; move them with partman.partition_data_proc",
            err=True,
        )


@main.command()
@click.option("--bind", default=None, help="host:port (LBS_BIND, default 127.0.0.1:8000)")
@click.option("--workers", type=int, default=None, help="gunicorn workers (LBS_WORKERS, default 2)")
def serve(bind: str | None, workers: int | None) -> None:
    """Run the API under gunicorn (lbs/gunicorn_conf.py: preloaded, LBS_THREADS threads per worker)."""
    settings = load_settings()
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lbs-metrics-")
    argv = [
        "gunicorn",
        "--config",
        "python:lbs.gunicorn_conf",
        "--bind",
        bind or settings.bind,
        "--workers",
        str(workers or settings.workers),
        "lbs.app:create_app()",
    ]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])


@main.command()
@click.option(
    "--checkins",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="user, venue, unix time (tab-separated)",
)
@click.option(
    "--pois",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="venue, latitude, longitude (tab-separated)",
)
@click.option("--radius-m", type=click.FloatRange(min=1, max=50_000), default=2000, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("result.json"),
    show_default=True,
    help="result.json; the plot goes beside it as .png",
)
def evaluate(checkins: Path, pois: Path, radius_m: float, out: Path) -> None:
    """Offline evaluation on check-ins: the protocol of docs/recommender.md, every method."""
    from lbs.evaluation import plot, run, table
    from recommender.training import NotEnoughHistory

    try:
        result = run(checkins, pois, radius_m, progress=lambda step: click.echo(f"  {step}", err=True))
    except NotEnoughHistory as exc:
        raise SystemExit(f"not evaluated: {exc}") from None
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out.with_suffix(".png"))
    click.echo(table(result))
    click.echo(f"wrote {out} and {out.with_suffix('.png')}")


@main.command()
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True, help="window of events")
@click.option("--radius-m", type=click.FloatRange(min=1, max=50_000), default=2000, show_default=True)
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="end of the window, UTC [default: now] (e.g. 2013-10-01 for the Foursquare check-ins)",
)
def train(days: int, radius_m: float, until: datetime | None) -> None:
    """Train the ranking model on the event log; API workers pick it up within LBS_MODEL_RELOAD_S."""
    _train(days, radius_m, None if until is None else until.replace(tzinfo=UTC))


def _train(days: int, radius_m: float, until: datetime | None = None) -> None:
    import time

    from lbs.training import train_from_events, visit_span
    from recommender import artifact
    from recommender.training import NotEnoughHistory

    settings = load_settings()
    engine = database()
    end = until or now()
    started = time.perf_counter()
    step, step_started = "read the events, the merchants and the reviews", started

    def progress(name: str) -> None:
        """Each step's time as the next begins (the first ends when training starts)."""
        nonlocal step, step_started
        now = time.perf_counter()
        click.echo(f"  {step}: {now - step_started:.1f} s", err=True)
        step, step_started = name, now

    try:
        with Session(engine) as session:
            model = train_from_events(session, end, days, radius_m, progress=progress)
    except NotEnoughHistory as exc:
        with Session(engine) as session:
            hint = _window_hint(visit_span(session), end, days)
        raise SystemExit(f"not trained: {exc}{hint}") from None
    progress("save the model")
    path = artifact.save(model, Path(settings.model_dir), now())
    progress("")
    meta = model.meta
    held_out = meta["metrics"]["held_out"]
    distance = meta["metrics"]["held_out_distance"]
    als = meta["params"]["als"]
    click.echo(
        f"{meta['interactions']:,} interactions, {meta['users']:,} users, {meta['items']:,} merchants, "
        f"{meta['reviews']:,} reviews, {meta['validation_cases']:,} validation cases, ALS "
        f"{als['iterations']} + {als['refit_iterations']} sweeps; {time.perf_counter() - started:.1f} s"
    )
    click.echo(
        f"held-out NDCG@10 ({held_out['cases']:,} cases): lbs {held_out['all']['ndcg@10']:.4f}, "
        f"distance {distance['all']['ndcg@10']:.4f}; discovery: lbs "
        f"{held_out['discovery']['ndcg@10']:.4f}, distance {distance['discovery']['ndcg@10']:.4f}"
    )
    click.echo(f"wrote {path}")


def _window_hint(span: tuple[datetime, datetime] | None, end: datetime, days: int) -> str:
    """What to try when the window had too little: visits outside it, or none at all."""
    if span is None:
        return (
            "; the event log has no visits at all: load some first (lbs seed foursquare DIR, "
            "lbs seed synthetic --users N) or serve requests that record them"
        )
    first, last = span
    if first >= end - timedelta(days=days) and last < end:
        return ""  # the window holds every visit there is
    until = datetime.combine((last + timedelta(days=1)).date(), datetime.min.time(), UTC)
    need = min(math.ceil((until - first) / timedelta(days=1)), 3650)
    return (
        f"; the event log's visits run from {first:%Y-%m-%d} to {last:%Y-%m-%d}, and this window is "
        f"the {days} days before {end:%Y-%m-%d %H:%M} UTC: train on them with --until {until:%Y-%m-%d} "
        f"--days {need}"
    )


@main.command()
@click.option("--reset", is_flag=True, help="drop every table, model and row first, then seed again")
@click.option(
    "--osm",
    "osm_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="OpenStreetMap extract [default: ../shared/data/osm-helsinki/Helsinki.osm.pbf beside the clone]",
)
@click.option("--users", type=click.IntRange(50, 1_000_000), default=2000, show_default=True)
def demo(reset: bool, osm_path: Path | None, users: int) -> None:
    """A living demo city: Helsinki's merchants, synthetic people, their deals and vouchers, a model.

    Each step runs only when its data is missing: a second run is quick and adds nothing.
    """
    import shutil

    from lbs.db import BEGIN_IMMEDIATE
    from lbs.secret_key import load_secret_key
    from seed import demo as city

    settings = load_settings()
    engine = database(migrated=False)
    if reset:
        migrate.downgrade(engine, "base")
        shutil.rmtree(settings.model_dir, ignore_errors=True)
        click.echo("demo: reset")
    migrate.upgrade(engine)
    params = city.DemoParams(users=users)
    with Session(engine) as session, session.begin():
        city.merchants(session, now(), osm_path or city.HELSINKI_OSM, click.echo)
    with Session(engine) as session:
        session.connection(execution_options={BEGIN_IMMEDIATE: True})
        city.people(session, now(), params, load_secret_key(settings), click.echo)
        session.commit()
    with Session(engine) as session, session.begin():
        city.try_deals(session, now(), click.echo)
        if settings.payment_provider:
            city.pay_ahead_deals(session, now(), click.echo)
        else:
            click.echo("deals to pay ahead: none, this server takes no payments (LBS_PAYMENT_PROVIDER)")
    problem = _model_problem(engine, Path(settings.model_dir))
    if problem is None:
        click.echo("model: already there")
    else:
        click.echo(f"model: {problem}; training one")
        _train(params.days + 1, 2000.0)


def _model_problem(engine: Engine, directory: Path) -> str | None:
    """Why the newest model in ``directory`` will not serve this database (None: it will)."""
    from lbs.services.database_identity import database_id
    from recommender import artifact

    path = artifact.current(directory)
    if path is None:
        return f"none in {directory}"
    with Session(engine) as session:
        ours = database_id(session)
    try:
        artifact.check_database(path, artifact.read_meta(path), ours)
    except artifact.ArtifactError as exc:
        return str(exc).split(";")[0]
    return None


@main.command("operator-token")
@click.option(
    "--file",
    "keep_in",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="keep the token in this file (made readable by you alone if missing, reused if there) "
    "and print only LBS_OPERATOR_TOKEN_SHA256=…: what `bash scripts/run` does for the demo",
)
def operator_token(keep_in: Path | None) -> None:
    """Make an operator token; prints the token and the LBS_OPERATOR_TOKEN_SHA256 to configure."""
    from lbs.services.api_keys import sha256_hex

    if keep_in is None:
        token = "lbs_op_" + secrets.token_urlsafe(32)
        click.echo(f"token: {token}")
    else:
        try:
            with os.fdopen(os.open(keep_in, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write("lbs_op_" + secrets.token_urlsafe(32))
        except FileExistsError:
            pass
        except OSError as exc:
            raise click.ClickException(f"{keep_in}: cannot create the token file ({exc.strerror})") from None
        token = keep_in.read_text().strip()
        if not token.startswith("lbs_op_"):
            raise click.ClickException(f"{keep_in}: not an operator token (lbs_op_…); remove it to make one")
    click.echo(f"LBS_OPERATOR_TOKEN_SHA256={sha256_hex(token)}")


if __name__ == "__main__":  # python -m lbs.cli
    main()
