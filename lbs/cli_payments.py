"""`lbs payments`: the jobs and checks of prepaid claims (docs/payments.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from sqlalchemy.orm import Session

from lbs.cli_context import database, now, service_session, settings
from lbs.db import make_session_factory
from lbs.errors import LbsError
from lbs.payments.provider import PaymentProvider


def _session() -> Session:
    """A session like a request's: what it loaded stays loaded across its commits. The jobs
    commit before each provider call; were their rows expired then, reading one would begin
    a read transaction that the next write upgrades, which SQLite refuses ("database is
    locked") once another writer has committed."""
    return make_session_factory(database())()


def _provider() -> PaymentProvider:
    from lbs.payments.stripe_adapter import make_provider

    provider = make_provider(settings())
    if provider is None:
        raise SystemExit("payments: LBS_PAYMENT_PROVIDER is not set (see docs/payments.md)")
    return provider


@click.group()
def payments() -> None:
    """Prepaid claims: expiry, reconciliation, the books and settlements."""


def _instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise click.BadParameter(f"{value!r}: expected ISO 8601 with an offset, 2026-12-24T18:00:00+00:00")
    return at


@payments.command("expire")
@click.option("--at", "at", metavar="ISO", callback=_instant,
              help="act as of this time, not now (ISO 8601 with an offset): what a run at that "
                   "time would do, for tests and for an operator catching up")  # fmt: skip
def payments_expire(at: datetime | None) -> None:
    """Release holds that ran out, refund (or settle, under no refunds) unused vouchers that
    expired, send refunds still pending. Safe to run twice at once and during traffic: run
    it every minute (cron, a systemd timer)."""
    from lbs.payments.expiry import expire
    from lbs.secret_key import load_secret_key

    config = settings()
    provider = _provider()
    with _session() as session:
        done = expire(session, provider, load_secret_key(config), at or now(), config.commission_bps)
    for note in done.notes:
        click.echo(note, err=True)
    click.echo(
        f"holds released {done.holds_released}, paid meanwhile {done.paid_meanwhile}; expired vouchers "
        f"refunded {done.vouchers_refunded}, earned under no refunds {done.vouchers_earned}; "
        f"pending refunds made {done.refunds_sent}; provider errors {done.provider_errors}"
    )
    if done.provider_errors:
        raise SystemExit(1)


@payments.command("reconcile")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650),
              help="check orders made in the last DAYS days (and every pending one)")  # fmt: skip
def payments_reconcile(days: int) -> None:
    """Compare the provider's payments and refunds with lbs's; repair what can be (a lost
    webhook, a refund made on the provider's dashboard) and report the rest (exit 1)."""
    from lbs.payments.reconcile import reconcile
    from lbs.secret_key import load_secret_key

    at = now()
    with _session() as session:
        found = reconcile(session, _provider(), load_secret_key(settings()), at, at - timedelta(days=days))
    for difference in found:
        mark = "repaired" if difference.repaired else "REPORTED"
        click.echo(f"{mark}: order {difference.order_id}: {difference.what}")
    left = [d for d in found if not d.repaired]
    click.echo(
        f"{len(found)} difference(s), {len(found) - len(left)} repaired, {len(left)} to settle by hand"
    )
    if left:
        raise SystemExit(1)


@payments.command("books")
def payments_books() -> None:
    """Check that every unit of money paid in is accounted for, per currency (exit 1 if not)."""
    from lbs.payments.books import check_books

    with service_session() as session:
        check = check_books(session)
    for b in check.books:
        click.echo(
            f"{b.currency}: paid in {b.paid_in} = refunded {b.refunded} (pending {b.refunds_pending})"
            f" + owed to merchants {b.owed_to_merchants} (paid out {b.paid_out})"
            f" + commission {b.commission} + held for unused vouchers {b.held}"
            + ("" if b.balanced else f"  UNBALANCED by {b.paid_in - b.accounted}")
        )
    for problem in check.problems:
        click.echo(problem, err=True)
    if not check.ok:
        raise SystemExit("the books do not balance")
    click.echo("books balance")


@payments.command("mark-paid")
@click.option("--merchant", "merchant_id", required=True, type=click.IntRange(1))
@click.option("--period", required=True, help="the ISO week: 2026-W49")
@click.option("--currency", required=True, help="ISO 4217: EUR")
@click.option("--reference", required=True, help="how it was paid (a bank transfer's reference)")
def payments_mark_paid(merchant_id: int, period: str, currency: str, reference: str) -> None:
    """Record that a merchant's statement for a week and currency was paid out."""
    from lbs.payments.periods import parse_period
    from lbs.payments.settlements import mark_paid

    try:
        start = parse_period(period)
    except ValueError:
        raise click.BadParameter(
            "expected an ISO week, YYYY-Www (2026-W49)", param_hint="'--period'"
        ) from None
    try:
        with service_session() as session:
            payout = mark_paid(session, merchant_id, start, currency.upper(), reference, now())
            click.echo(
                f"merchant {merchant_id}, {period}: {payout.amount_minor} {payout.currency} for "
                f"{payout.vouchers} voucher(s) marked paid ({payout.reference})"
            )
    except LbsError as exc:
        raise SystemExit(exc.detail) from None
