"""`lbs seed`: a synthetic city, an OpenStreetMap extract, Foursquare check-ins."""

from __future__ import annotations

import time
from pathlib import Path

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbs.cli_context import database, now, settings


@click.group()
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
    from lbs.db import BEGIN_IMMEDIATE
    from lbs.models import Merchant
    from lbs.secret_key import load_secret_key
    from seed import loader

    engine = database()
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
        secret_key = load_secret_key(settings()) if users else b""
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

    engine = database()  # before reading: a database to fix is said before a long read
    found = osm.read(path)
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
    """Foursquare check-ins (venues, users, visits at their real times) from the directory
    holding Foursquare_checkins.txt and Foursquare_poi_coos.txt; a re-import adds nothing twice."""
    from seed import foursquare

    foursquare.check_directory(directory)
    engine = database()
    with Session(engine) as session, session.begin():
        loaded = foursquare.load(session, directory, now())
    click.echo(
        f"{loaded.venues} new venues, {loaded.users} users, {loaded.visits} new visits from {directory}"
    )
    for what, n in sorted(loaded.counts.items()):
        click.echo(f"  {what}: {n}")
