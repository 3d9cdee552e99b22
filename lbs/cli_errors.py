"""What `lbs` prints when a command cannot do its work: one line saying what went wrong,
with which file, argument or setting, and what to do, and a non-zero exit (issue 17: a
71-line traceback ending in "no such table: merchants"). Tracebacks stay for bugs."""

from __future__ import annotations

from typing import Any, NoReturn

import click
from click.exceptions import NoArgsIsHelpError
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import DBAPIError

from lbs import migrate
from lbs.errors import InputFileError


class OneLineUsageError(click.UsageError):
    """A usage error as one line (click prints the usage and a hint above it)."""

    def show(self, file: Any = None) -> None:
        command = self.ctx.command_path if self.ctx is not None else "lbs"
        click.echo(f"{command}: {self.format_message()} (see {command} --help)", err=True)


class Commands(click.Group):
    """The `lbs` group: the failures every command can meet become one-line exits."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:  # `lbs seed` alone: its help, as click shows it
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc.format_message(), exc.ctx) from None
        except InputFileError as exc:
            raise SystemExit(str(exc)) from None
        except DBAPIError as exc:  # the schema was checked: an error of the server, said as one line
            raise SystemExit(f"the database refused: {first_line(exc.orig)}") from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise SystemExit(f"{exc.strerror or exc}{where}") from None


def first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def shown(url: str) -> str:
    """A database URL fit to print: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def unreachable(url: str, exc: DBAPIError) -> NoReturn:
    raise SystemExit(
        f"cannot connect to the database at {shown(url)} ({first_line(exc.orig)}); "
        "check LBS_DATABASE_URL and that the server is running"
    ) from None


def require_schema(engine: Engine, url: str, *, migrated: bool = True) -> None:
    """Exit with one line unless the database is reachable and (``migrated``) at the newest
    migration."""
    try:
        at = migrate.current(engine)
    except DBAPIError as exc:
        unreachable(url, exc)
    known = migrate.revisions()
    if at == known[-1] or not migrated:
        return
    if at is None:
        raise SystemExit(f"the database at {shown(url)} has no lbs tables yet: run `lbs db upgrade` first")
    if at in known:
        raise SystemExit(
            f"the database at {shown(url)} is at migration {at}, this lbs needs {known[-1]}: "
            "run `lbs db upgrade`"
        )
    raise SystemExit(
        f"the database at {shown(url)} is at migration {at}, which this lbs does not know "
        f"(its newest is {known[-1]}): run the lbs that migrated it, or a newer one"
    )
