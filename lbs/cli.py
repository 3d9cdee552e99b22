"""The `lbs` command: database, serving, merchants, seeding, operator token."""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy.orm import Session

from lbs import migrate
from lbs.cli_context import now, service_session
from lbs.cli_context import settings as load_settings
from lbs.cli_merchants import merchants
from lbs.db import make_engine
from lbs.event_partitions import INTERVALS, PREMAKE, PartitioningUnavailable, partition_events


@click.group()
def main() -> None:
    """lbs: local merchants and deals near you. Configure with LBS_* environment variables."""


main.add_command(merchants)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations (creates the SQLite file or the PostGIS extension as needed)."""
    settings = load_settings()
    migrate.upgrade(make_engine(settings.database_url), revision)
    click.echo(f"database at {revision}")


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
    settings = load_settings()
    try:
        report = partition_events(make_engine(settings.database_url), interval, premake)
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


@main.group()
def seed() -> None:
    """Seed data."""


@seed.command("synthetic")
@click.option("--merchants", "count", type=click.IntRange(1, 10_000_000), default=5000, show_default=True)
@click.option("--users", type=click.IntRange(0, 10_000_000), default=0, show_default=True)
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True, help="of events")
@click.option("--seed", "rng_seed", type=click.IntRange(0, 2**31 - 1), default=7, show_default=True)
@click.option("--if-empty", is_flag=True, help="do nothing when merchants already exist")
def seed_synthetic(count: int, users: int, days: int, rng_seed: int, if_empty: bool) -> None:
    """A synthetic city around Helsinki: merchants with hours and deals, and (with --users)
    people with hidden tastes and their impressions, clicks, claims, redemptions and visits,
    bulk-loaded in one transaction. Deterministic for a seed; a seed loads once."""
    import time

    from sqlalchemy import func, select

    from lbs.db import BEGIN_IMMEDIATE
    from lbs.models import Merchant
    from lbs.secret_key import load_secret_key
    from seed import loader

    settings = load_settings()
    engine = make_engine(settings.database_url)
    started = time.perf_counter()
    with Session(engine) as session:
        session.connection(execution_options={BEGIN_IMMEDIATE: True})
        if if_empty and session.execute(select(func.count()).select_from(Merchant)).scalar_one():
            click.echo("merchants exist; not seeding")
            return
        if loader.is_loaded(session, rng_seed):
            click.echo(f"the synthetic city of seed {rng_seed} is already loaded; not seeding")
            return
        spec = loader.Spec(merchants=count, users=users, days=days, seed=rng_seed)
        # Vouchers (codes keyed by the deployment's secret) come only with people.
        secret_key = load_secret_key(settings) if users else b""
        loaded = loader.load(session, spec, now(), secret_key, click.echo)
        session.commit()
    total = sum(loaded.counts.values())
    click.echo(f"seeded {total:,} rows in {time.perf_counter() - started:.1f} s")


@seed.command("osm")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def seed_osm(path: Path) -> None:
    """Merchants from an OpenStreetMap extract (.osm.pbf); a re-import updates them."""
    from lbs.services.merchants import upsert_by_source_ref
    from seed import osm

    found = osm.read(path)
    engine = make_engine(load_settings().database_url)
    with Session(engine) as session, session.begin():
        done = upsert_by_source_ref(session, list(found.rows.items()), now())
    click.echo(
        f"{len(found.rows)} merchants from {path.name}: {done.inserted} new, {done.updated} updated, "
        f"{done.unchanged} unchanged ({osm.ATTRIBUTION})"
    )
    for what, n in sorted({**found.skipped, **found.repaired}.items()):
        click.echo(f"  {what}: {n}")


@seed.command("foursquare")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def seed_foursquare(directory: Path) -> None:
    """Foursquare check-ins (venues, users, visits at their real times); a re-import adds nothing twice."""
    from seed import foursquare

    engine = make_engine(load_settings().database_url)
    with Session(engine) as session, session.begin():
        loaded = foursquare.load(session, directory, now())
    click.echo(
        f"{loaded.venues} new venues, {loaded.users} users, {loaded.visits} new visits from {directory}"
    )
    for what, n in sorted(loaded.counts.items()):
        click.echo(f"  {what}: {n}")


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
    help="end of the window, UTC [default: now] (e.g. 2013-09-30 for the Foursquare check-ins)",
)
def train(days: int, radius_m: float, until: datetime | None) -> None:
    """Train the ranking model on the event log; API workers pick it up within LBS_MODEL_RELOAD_S."""
    _train(days, radius_m, None if until is None else until.replace(tzinfo=UTC))


def _train(days: int, radius_m: float, until: datetime | None = None) -> None:
    import time

    from lbs.training import train_from_events
    from recommender import artifact
    from recommender.training import NotEnoughHistory

    settings = load_settings()
    engine = make_engine(settings.database_url)
    started = time.perf_counter()
    step, step_started = "read the events and the merchants", started

    def progress(name: str) -> None:
        """Each step's time as the next begins (the first ends when training starts)."""
        nonlocal step, step_started
        now = time.perf_counter()
        click.echo(f"  {step}: {now - step_started:.1f} s", err=True)
        step, step_started = name, now

    try:
        with Session(engine) as session:
            model = train_from_events(session, until or now(), days, radius_m, progress=progress)
    except NotEnoughHistory as exc:
        raise SystemExit(f"not trained: {exc}") from None
    progress("save the model")
    path = artifact.save(model, Path(settings.model_dir), now())
    progress("")
    meta = model.meta
    held_out = meta["metrics"]["held_out"]
    distance = meta["metrics"]["held_out_distance"]
    als = meta["params"]["als"]
    click.echo(
        f"{meta['interactions']:,} interactions, {meta['users']:,} users, {meta['items']:,} merchants, "
        f"{meta['validation_cases']:,} validation cases, ALS {als['iterations']} + "
        f"{als['refit_iterations']} sweeps; {time.perf_counter() - started:.1f} s"
    )
    click.echo(
        f"held-out NDCG@10 ({held_out['cases']:,} cases): lbs {held_out['all']['ndcg@10']:.4f}, "
        f"distance {distance['all']['ndcg@10']:.4f}; discovery: lbs "
        f"{held_out['discovery']['ndcg@10']:.4f}, distance {distance['discovery']['ndcg@10']:.4f}"
    )
    click.echo(f"wrote {path}")


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

    from lbs import migrate
    from lbs.db import BEGIN_IMMEDIATE
    from lbs.secret_key import load_secret_key
    from recommender import artifact
    from seed import demo as city

    settings = load_settings()
    engine = make_engine(settings.database_url)
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
    if artifact.current(Path(settings.model_dir)) is None:
        _train(params.days + 1, 2000.0)
    else:
        click.echo("model: already there")


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
