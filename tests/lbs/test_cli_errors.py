"""Every `lbs` failure an operator can cause is one line (what, which file, argument or
setting, what to do) and a non-zero exit, never a traceback (issue 17, bug 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lbs import migrate
from lbs.cli import main
from lbs.db import make_engine
from tests.lbs.test_cli import GOOD_CSV, write

REPO = Path(__file__).resolve().parents[2]


def lbs(database_url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"LBS_DATABASE_URL": database_url, **env})


def assert_one_line_failure(result: Result, *, exit_code: int = 1) -> str:
    """The command failed with ``exit_code`` and said so in one line, without a traceback."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), f"crashed with {result.exception!r}: {result.output}"
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def foursquare_directory(tmp_path: Path, year: int = 2013) -> Path:
    """Check-ins in the files' format: two users visiting three venues in ``year``."""
    directory = tmp_path / "foursquare"
    directory.mkdir()
    start = datetime(year, 3, 1, tzinfo=UTC).timestamp()
    (directory / "Foursquare_poi_coos.txt").write_text(
        "0\t40.7128\t-74.0060\n1\t40.7138\t-74.0050\n2\t40.7148\t-74.0040\n"
    )
    (directory / "Foursquare_checkins.txt").write_text(
        "".join(
            f"{u}\t{(u + n) % 3}\t{int(start + 86400 * (n + 30 * u))}\n" for u in (0, 1) for n in range(6)
        )
    )
    return directory


NEED_SCHEMA = {
    "seed synthetic": ["seed", "synthetic", "--merchants", "10"],
    "seed osm": ["seed", "osm", "{osm}"],
    "seed foursquare": ["seed", "foursquare", "{foursquare}"],
    "merchants import": ["merchants", "import", "{csv}"],
    "merchants api-key": ["merchants", "api-key", "1"],
    "train": ["train"],
    "db check": ["db", "check"],
}


@pytest.mark.parametrize("command", sorted(NEED_SCHEMA))
def test_a_command_on_an_unmigrated_database_says_to_run_db_upgrade(
    command: str, empty_database_url: str, tmp_path: Path
) -> None:
    paths = {
        "osm": str(REPO.parent / "shared" / "data" / "osm-helsinki" / "Helsinki.osm.pbf"),
        "foursquare": str(foursquare_directory(tmp_path)),
        "csv": str(write(tmp_path, "shops.csv", GOOD_CSV)),
    }
    args = [arg.format(**paths) for arg in NEED_SCHEMA[command]]

    line = assert_one_line_failure(lbs(empty_database_url, *args))

    assert line.startswith("the database at ") and line.endswith(
        "has no lbs tables yet: run `lbs db upgrade` first"
    )


def test_a_database_behind_the_newest_migration_is_named_with_both_revisions(
    empty_database_url: str,
) -> None:
    engine = make_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0007")
    finally:
        engine.dispose()
    newest = migrate.revisions()[-1]

    line = assert_one_line_failure(lbs(empty_database_url, "db", "check"))

    assert line.endswith(f"is at migration 0007, this lbs needs {newest}: run `lbs db upgrade`")
    assert lbs(empty_database_url, "db", "upgrade").exit_code == 0
    assert lbs(empty_database_url, "db", "check").exit_code == 0


def test_db_upgrade_to_an_unknown_revision_lists_the_known_ones(empty_database_url: str) -> None:
    line = assert_one_line_failure(
        lbs(empty_database_url, "db", "upgrade", "--revision", "9999"), exit_code=2
    )

    assert line.startswith(
        "lbs db upgrade: Invalid value for '--revision': no migration '9999': give one of 0001"
    )
    assert "or head" in line


def test_db_upgrade_prints_the_database_id_that_models_record(empty_database_url: str) -> None:
    result = lbs(empty_database_url, "db", "upgrade")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"database at migration {migrate.revisions()[-1]} (database id ")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres:hunter2@127.0.0.1:9/lbs",  # nothing listens on port 9
        "postgresql+psycopg://postgres@127.0.0.1:5432/lbs_no_such_database",
    ],
)
def test_an_unreachable_database_is_named_without_its_password(url: str) -> None:
    line = assert_one_line_failure(lbs(url, "train"))

    assert line.startswith("cannot connect to the database at postgresql+psycopg://postgres")
    assert line.endswith("check LBS_DATABASE_URL and that the server is running")
    assert "hunter2" not in line


@pytest.mark.parametrize("url", ["lbs.sqlite3", "mysql://root:hunter2@localhost/lbs", "postgres//x"])
def test_a_database_url_that_is_not_one_is_a_configuration_error(url: str) -> None:
    line = assert_one_line_failure(lbs(url, "db", "upgrade"))

    assert line == (
        "configuration: LBS_DATABASE_URL is not a SQLite or PostgreSQL URL; expected sqlite:///PATH or "
        "postgresql+psycopg://USER[:PASSWORD]@HOST:5432/DBNAME"
    )


def test_seed_osm_on_a_file_that_is_not_pbf_names_it(database_url: str, tmp_path: Path) -> None:
    line = assert_one_line_failure(
        lbs(database_url, "seed", "osm", str(write(tmp_path, "shops.osm.pbf", "x,y\n")))
    )

    assert line.startswith(f"{tmp_path / 'shops.osm.pbf'}: not an OpenStreetMap extract osmium can read (")
    assert "give an .osm.pbf file" in line


def test_seed_foursquare_on_the_wrong_directory_points_at_the_right_one(
    database_url: str, tmp_path: Path
) -> None:
    right = foursquare_directory(tmp_path)

    line = assert_one_line_failure(lbs(database_url, "seed", "foursquare", str(tmp_path)))

    assert line == (
        f"{tmp_path}: no Foursquare_poi_coos.txt or Foursquare_checkins.txt in this directory; "
        f"did you mean {right}?"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    line = assert_one_line_failure(lbs(database_url, "seed", "foursquare", str(empty)))
    assert line.endswith("give the directory that holds Foursquare_poi_coos.txt and Foursquare_checkins.txt "
                         "(e.g. ../shared/data/foursquare-us)")  # fmt: skip


def test_seed_foursquare_with_a_file_of_another_format_names_the_file(
    database_url: str, tmp_path: Path
) -> None:
    directory = foursquare_directory(tmp_path)
    (directory / "Foursquare_checkins.txt").write_text("user,venue,time\n1,2,3\n")

    line = assert_one_line_failure(lbs(database_url, "seed", "foursquare", str(directory)))

    assert line.startswith(f"{directory / 'Foursquare_checkins.txt'}: not tab-separated numbers")
    assert line.endswith(
        "give a file of lines: user, venue, unix time (tab-separated, as Foursquare_checkins.txt)"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["seed", "osm", "{tmp}/missing.osm.pbf"],
        ["seed", "foursquare", "{tmp}/missing"],
        ["merchants", "import", "{tmp}/missing.csv"],
        ["evaluate", "--checkins", "{tmp}/missing.txt", "--pois", "{tmp}/missing.txt"],
    ],
)
def test_a_missing_file_is_one_usage_line(args: list[str], database_url: str, tmp_path: Path) -> None:
    command = " ".join(a for a in args if not a.startswith(("{", "--")))

    line = assert_one_line_failure(lbs(database_url, *[a.format(tmp=tmp_path) for a in args]), exit_code=2)

    assert line.startswith(f"lbs {command}: Invalid value for ")
    assert f"{tmp_path}/missing" in line and line.endswith(f"does not exist. (see lbs {command} --help)")


def test_a_sqlite_path_under_a_file_is_named(tmp_path: Path) -> None:
    blocker = write(tmp_path, "not-a-directory", "")

    line = assert_one_line_failure(lbs(f"sqlite:///{blocker}/lbs.sqlite3", "db", "upgrade"))

    assert line == f"File exists: {blocker}"


def test_train_on_visits_outside_the_window_suggests_until(database_url: str, tmp_path: Path) -> None:
    assert lbs(database_url, "seed", "foursquare", str(foursquare_directory(tmp_path))).exit_code == 0

    line = assert_one_line_failure(lbs(database_url, "train", LBS_MODEL_DIR=str(tmp_path / "models")))

    assert line.startswith("not trained: no visits to learn from; the event log's visits run from 2013-03-01 "
                           "to 2013-04-05, and this window is the 365 days before ")  # fmt: skip
    assert line.endswith("train on them with --until 2013-04-06 --days 36")
    suggested = lbs(database_url, "train", "--until", "2013-04-06", "--days", "36")
    # Now the window holds the visits (the steps' times, then): too few of them to learn from.
    assert suggested.exit_code == 1 and isinstance(suggested.exception, SystemExit)
    last = suggested.output.strip().splitlines()[-1]
    assert last.startswith("not trained: 5 validation cases") and "--until" not in last


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])

    assert result.exit_code == 0 and result.output == "lbs, version 0.1.0\n"


def test_the_real_command_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    """Through a process, as an operator runs it (python -m lbs.cli, as the `lbs` script)."""
    env = {
        **os.environ,
        "LBS_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "PYTHONPATH": str(REPO),
    }

    done = subprocess.run(
        [sys.executable, "-m", "lbs.cli", "seed", "synthetic"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1 and done.stdout == ""
    database = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    assert done.stderr.splitlines() == [
        f"the database at {database} has no lbs tables yet: run `lbs db upgrade` first"
    ]
