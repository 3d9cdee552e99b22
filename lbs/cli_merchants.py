"""`lbs merchants`: import merchant files; issue, list and revoke their API keys."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.orm import Session

from lbs.cli_context import database, now, service_session
from lbs.errors import InvalidRows, where


@click.group()
def merchants() -> None:
    """Merchant data."""


@merchants.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--keep-positions", is_flag=True, help="import positions that look like lat and lon swapped as they are"
)
def merchants_import(path: Path, keep_positions: bool) -> None:
    """Import merchants from CSV or GeoJSON; a bad row aborts the whole file. Importing a
    file again updates its merchants (by their ref, else by name and position)."""
    from lbs.services.imports import import_merchant_file

    engine = database()
    try:
        with Session(engine) as session, session.begin():
            done = import_merchant_file(session, path, now(), keep_positions=keep_positions)
    except InvalidRows as exc:
        for error in exc.errors:
            click.echo(f"{path}:{where(error)}: {error['field']}: {error['message']}", err=True)
        raise SystemExit(f"{len(exc.errors)} error(s); nothing was imported") from None
    total = done.inserted + done.updated + done.unchanged
    click.echo(
        f"imported {total} merchants from {path.name}: {done.inserted} new, {done.updated} updated, "
        f"{done.unchanged} unchanged"
    )


@merchants.command("api-key")
@click.argument("merchant_id", type=int)
def merchants_api_key(merchant_id: int) -> None:
    """Issue an API key for a merchant (printed once, stored hashed)."""
    from lbs.services.api_keys import issue_api_key

    with service_session() as session:
        issued = issue_api_key(session, merchant_id, now())
    click.echo(issued.key)
    stop = f"lbs merchants revoke-key {merchant_id} {issued.id}"
    click.echo(f"(key id {issued.id}: `{stop}` stops it)", err=True)


@merchants.command("api-keys")
@click.argument("merchant_id", type=int)
def merchants_api_keys(merchant_id: int) -> None:
    """List a merchant's API keys: id, created, until when it works (never the keys)."""
    from lbs.services.api_keys import list_api_keys

    with service_session() as session:
        keys = list_api_keys(session, merchant_id, now())
    for key in keys:
        until = "revoked " + key["revoked_at"].isoformat() if key["revoked_at"] else "no end"
        state = "works" if key["active"] else "stopped"
        click.echo(f"{key['id']}\tcreated {key['created_at'].isoformat()}\t{until}\t{state}")


@merchants.command("revoke-key")
@click.argument("merchant_id", type=int)
@click.argument("key_id", type=int)
def merchants_revoke_key(merchant_id: int, key_id: int) -> None:
    """Stop one of a merchant's API keys now."""
    from lbs.services.api_keys import revoke_api_key

    with service_session() as session:
        revoke_api_key(session, merchant_id, key_id, now())
    click.echo(f"key {key_id} of merchant {merchant_id} revoked")
