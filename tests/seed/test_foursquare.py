"""The Foursquare loader: the real check-ins in, once, on both databases; a venue without
coordinates counted, never a crash; the visits ready for `lbs train`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from lbs.cli import main
from lbs.models import Event, Merchant, User

FOURSQUARE = Path(__file__).resolve().parents[3] / "shared" / "data" / "foursquare-us"


def seed_foursquare(database_url: str, directory: Path) -> str:
    invoked = CliRunner().invoke(
        main, ["seed", "foursquare", str(directory)], env={"LBS_DATABASE_URL": database_url}
    )
    assert invoked.exit_code == 0, invoked.output
    return invoked.output


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.execute(select(func.count()).select_from(m)).scalar_one() for m in (Merchant, User, Event)
        )


def test_the_real_checkins_load_once_and_train_a_model(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    first = seed_foursquare(database_url, FOURSQUARE)
    # 185,983 check-ins, of which 112 repeat a (user, venue, time) already listed.
    assert "8000 new venues, 4969 users, 185871 new visits" in first
    assert counts(engine) == (8000, 4969, 185_871)

    again = seed_foursquare(database_url, FOURSQUARE)

    assert "0 new venues, 4969 users, 0 new visits" in again and counts(engine) == (8000, 4969, 185_871)
    with Session(engine) as session:
        first_visit = session.execute(select(func.min(Event.occurred_at))).scalar_one()
    assert first_visit.year == 2012  # real times: April 2012 onwards
    # The check-ins end in 2013: `lbs train --until` sets where the window ends.
    env = {"LBS_DATABASE_URL": database_url, "LBS_MODEL_DIR": str(tmp_path / "models")}
    trained = CliRunner().invoke(
        main, ["train", "--until", "2013-10-01", "--days", "730", "--radius-m", "1000"], env=env
    )
    assert trained.exit_code == 0, trained.output
    assert "185,871 interactions, 4,969 users, 8,000 merchants" in trained.output
    assert len(list((tmp_path / "models").glob("model-*"))) == 1


def test_a_venue_without_coordinates_is_counted_and_skipped(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "Foursquare_poi_coos.txt").write_text("0\t40.75\t-73.99\n1\t40.76\t-73.98\n")
    (tmp_path / "Foursquare_checkins.txt").write_text(
        "7\t0\t1340000000\n7\t1\t1340003600\n7\t2\t1340007200\n8\t2\t1340007300\n7\t1\t1340003600\n"
    )

    report = seed_foursquare(database_url, tmp_path)

    assert "2 new venues, 1 users, 2 new visits" in report  # user 8 only went to venue 2
    assert "check-ins at a venue without coordinates: 2" in report
    assert "venues without coordinates: 1" in report
    with Session(engine) as session:
        names = set(session.execute(select(Merchant.name)).scalars())
        times = sorted(t.timestamp() for t in session.execute(select(Event.occurred_at)).scalars())
    assert names == {"Foursquare venue 0", "Foursquare venue 1"}
    assert times == [1340000000.0, 1340003600.0]
