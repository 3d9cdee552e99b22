"""`lbs insights`: the rollup merchants' insights read (docs/insights.md)."""

from __future__ import annotations

import click

from lbs.cli_context import now, service_session
from lbs.services.insights_rollup import REFRESH_EVENTS, SETTLE_S, refresh_insights


@click.group()
def insights() -> None:
    """Merchants' insights: the rollup of the event log."""


@insights.command("refresh")
@click.option(
    "--settle-s",
    type=click.FloatRange(min=0),
    default=SETTLE_S,
    show_default=True,
    help="roll up an event only this long after its id was seen (transactions writing events end "
    "sooner); 0 when nothing else writes",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=REFRESH_EVENTS,
    show_default=True,
    help="events per transaction",
)
def refresh(settle_s: float, batch: int) -> None:
    """Roll the events written since the last refresh up into insights' daily rows (one at a
    time; reads add what is not rolled up yet themselves). Run it every minute or so."""
    events = rows = 0
    while True:
        with service_session() as session:
            report = refresh_insights(session, now(), settle_s=settle_s, max_events=batch)
        events, rows = events + report.events, rows + report.rows
        if report.events == 0:
            break
    click.echo(f"{events} events into {rows} rows; rolled up to event {report.rolled_up_to}")
    if report.waiting_from > report.rolled_up_to:
        click.echo(
            f"events {report.rolled_up_to + 1}-{report.waiting_from} follow once {settle_s:g} s "
            f"have passed since {report.seen_at:%H:%M:%S} UTC"
        )
