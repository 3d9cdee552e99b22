"""`lbs merchants import` (issue 17, bug 6): a file imported again updates its merchants
instead of adding them twice, a misspelt header is caught even over empty cells, a bad
value is shown, and positions that look like lat and lon swapped stop the import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from lbs.models import Merchant
from lbs.services.import_positions import swap_suspects
from tests.factories import count_merchants
from tests.lbs.test_cli import GOOD_CSV, assert_clean_failure, collection, feature, lbs, write

# Central Helsinki, as (lat, lon).
HELSINKI = [(60.1699, 24.9384), (60.1686, 24.9417), (60.1719, 24.9414), (60.1640, 24.9402)]


def merchants(engine: Engine) -> dict[str, tuple[float, float, str | None]]:
    with Session(engine) as session:
        rows = session.execute(select(Merchant.name, Merchant.lat, Merchant.lon, Merchant.opening_hours))
        return {name: (lat, lon, hours) for name, lat, lon, hours in rows}


def test_the_same_csv_imported_twice_adds_nothing_the_second_time(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, "shops.csv", GOOD_CSV)

    first = lbs(database_url, "merchants", "import", str(path))
    again = lbs(database_url, "merchants", "import", str(path))

    assert first.output == "imported 3 merchants from shops.csv: 3 new, 0 updated, 0 unchanged\n"
    assert again.output == "imported 3 merchants from shops.csv: 0 new, 0 updated, 3 unchanged\n"
    assert count_merchants(engine) == 3


def test_a_row_changed_but_for_its_name_and_position_is_updated(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    lbs(database_url, "merchants", "import", str(write(tmp_path, "a.csv", GOOD_CSV)))
    changed = GOOD_CSV.replace("Mo-Fr 08:00-18:00", "Mo-Sa 07:00-19:00")

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "b.csv", changed)))

    assert result.output == "imported 3 merchants from b.csv: 0 new, 1 updated, 2 unchanged\n"
    assert merchants(engine)["Kahvila Sävy"] == (60.1699, 24.9384, "Mo-Sa 07:00-19:00")


def test_a_ref_column_lets_a_later_file_rename_and_move_a_merchant(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    before = "ref,name,category,lat,lon\nS-1,Sävy,cafe,60.1699,24.9384\nS-2,Baari,bar,60.1710,24.9410\n"
    after = (
        "ref,name,category,lat,lon\nS-1,Kahvila Sävy,cafe,60.1700,24.9390\nS-2,Baari,bar,60.1710,24.9410\n"
    )

    lbs(database_url, "merchants", "import", str(write(tmp_path, "before.csv", before)))
    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "after.csv", after)))

    assert result.output == "imported 2 merchants from after.csv: 0 new, 1 updated, 1 unchanged\n"
    assert merchants(engine) == {"Kahvila Sävy": (60.17, 24.939, None), "Baari": (60.171, 24.941, None)}


def test_the_same_geojson_imported_twice_is_keyed_by_its_ref_property_not_the_feature_id(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    def shop(i: int, lat: float, lon: float, name: str) -> dict[str, Any]:
        found = feature(lon, lat, name=name, category="cafe", ref=f"shop-{i}")
        return {**found, "id": i + 1}  # as exports number them

    shops = [shop(i, lat, lon, f"shop {i}") for i, (lat, lon) in enumerate(HELSINKI)]
    lbs(database_url, "merchants", "import", str(write(tmp_path, "shops.geojson", collection(*shops))))
    renamed = [shop(0, *HELSINKI[0], "renamed"), *shops[1:]]
    result = lbs(
        database_url, "merchants", "import", str(write(tmp_path, "renamed.geojson", collection(*renamed)))
    )
    # Another export, numbered 1..N too, without refs: new merchants, nothing renamed.
    others = [{**feature(lon, lat + 0.01, name=f"other {i}", category="bar"), "id": i + 1}
              for i, (lat, lon) in enumerate(HELSINKI)]  # fmt: skip
    another = lbs(database_url, "merchants", "import", str(write(tmp_path, "o.geojson", collection(*others))))

    assert result.output == "imported 4 merchants from renamed.geojson: 0 new, 1 updated, 3 unchanged\n"
    assert another.output == "imported 4 merchants from o.geojson: 4 new, 0 updated, 0 unchanged\n"
    assert sorted(merchants(engine)) == [
        *(f"other {i}" for i in range(4)),
        "renamed",
        "shop 1",
        "shop 2",
        "shop 3",
    ]


def test_a_misspelt_header_over_empty_cells_is_caught_with_a_suggestion(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    content = "name,category,lat,lon,adress,Website\nA,cafe,60.1,24.9,,\nB,bar,60.2,24.9,,\n"

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "typo.csv", content)))

    assert_clean_failure(result)
    lines = result.output.splitlines()
    assert lines[0].startswith(
        f"{tmp_path / 'typo.csv'}:line 1: adress: unknown column; did you mean 'address'? "
    )
    assert lines[1].startswith(
        f"{tmp_path / 'typo.csv'}:line 1: Website: unknown column; did you mean 'website'? "
    )
    assert lines[2] == "2 error(s); nothing was imported"
    assert count_merchants(engine) == 0


def test_a_missing_required_column_and_a_repeated_one_are_named(database_url: str, tmp_path: Path) -> None:
    result = lbs(
        database_url,
        "merchants",
        "import",
        str(write(tmp_path, "short.csv", "name,category,lat,name\nA,cafe,1,A\n")),
    )

    assert_clean_failure(result)
    assert "short.csv:line 1: name: column given twice" in result.output
    assert "short.csv:line 1: lon: required column missing" in result.output


def test_a_bad_value_is_shown_in_its_error_line(database_url: str, tmp_path: Path) -> None:
    content = "name,category,lat,lon,price_level\nA,cafe,sixty,24.9,\nB,pub,60.1,24.9,9\n"

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "bad.csv", content)))

    assert_clean_failure(result)
    number = "Input should be a valid number, unable to parse string as a number"
    assert f"bad.csv:line 2: lat: {number} (got 'sixty')" in result.output
    assert "bad.csv:line 3: category: Input should be " in result.output and "(got 'pub')" in result.output
    assert "bad.csv:line 3: price_level: Input should be less than or equal to 4 (got '9')" in result.output


def test_the_same_row_twice_in_a_file_is_refused(database_url: str, engine: Engine, tmp_path: Path) -> None:
    content = "name,category,lat,lon\nA,cafe,60.1,24.9\nB,bar,60.2,24.9\nA,cafe,60.1,24.9\n"

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "twice.csv", content)))

    assert_clean_failure(result)
    assert "twice.csv:line 4: row: the same name and position as line 2" in result.output
    assert count_merchants(engine) == 0


def test_a_geojson_written_lat_lon_is_stopped_unless_kept(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    swapped = collection(
        *(feature(lat, lon, name=f"shop {i}", category="cafe") for i, (lat, lon) in enumerate(HELSINKI))
    )
    path = write(tmp_path, "swapped.geojson", swapped)

    refused = lbs(database_url, "merchants", "import", str(path))

    assert_clean_failure(refused)
    assert f"{path}:feature 1: geometry: [60.1699, 24.9384] looks like [lat, lon] (GeoJSON is [lon, lat]): " \
        "there it is at sea or uninhabited (Etc/GMT-4), while swapped it is in Europe/Helsinki; fix it, or " \
        "import the positions as given with --keep-positions" in refused.output  # fmt: skip
    assert refused.output.count("looks like [lat, lon]") == 4
    assert count_merchants(engine) == 0

    kept = lbs(database_url, "merchants", "import", "--keep-positions", str(path))
    assert kept.exit_code == 0, kept.output
    assert count_merchants(engine) == 4


def test_one_feature_written_the_other_way_round_is_named(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    features = [feature(lon, lat, name=f"shop {i}", category="cafe") for i, (lat, lon) in enumerate(HELSINKI)]
    features[2] = feature(HELSINKI[2][0], HELSINKI[2][1], name="shop 2", category="cafe")

    result = lbs(
        database_url, "merchants", "import", str(write(tmp_path, "one.geojson", collection(*features)))
    )

    assert_clean_failure(result)
    assert "one.geojson:feature 3: geometry: [60.1719, 24.9414] looks like [lat, lon]" in result.output
    assert result.output.count("looks like") == 1


def test_swap_suspects_leave_real_places_alone() -> None:
    world = [
        (35.68, 139.76),
        (51.5072, -0.1276),
        (40.7128, -74.006),
        (-33.8688, 151.2093),
        (60.1699, 24.9384),
    ]

    assert swap_suspects(world) == []
    assert swap_suspects(HELSINKI) == []
    assert [s.index for s in swap_suspects([*HELSINKI, (24.9402, 60.1640)])] == [4]
    # Outliers: far from the others, and among them when swapped.
    three = [(48.85, 2.35), (48.86, 2.34), (2.35, 48.85)]
    assert [s.index for s in swap_suspects(three)] == [2]


def test_unknown_geojson_property_is_named_with_a_suggestion(database_url: str, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "typo.geojson",
        collection(feature(24.9, 60.1, name="A", category="cafe", adress=None)),
    )

    result = lbs(database_url, "merchants", "import", str(path))

    assert_clean_failure(result)
    assert "typo.geojson:feature 1: adress: unknown property; did you mean 'address'?" in result.output


def test_a_tags_cell_holds_several_tags_separated_by_semicolons(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    content = (
        "name,category,lat,lon,tags\n"
        "Luigi's,restaurant,60.17,24.94,pizza; italian;;Pizza\n"
        "Baari,bar,60.171,24.941,\n"
    )

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "tagged.csv", content)))

    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        tags = {name: value for name, value in session.execute(select(Merchant.name, Merchant.tags))}
    assert tags == {"Luigi's": ["pizza", "italian"], "Baari": None}
