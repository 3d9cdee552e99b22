"""The lbs command: db upgrade, merchants import (CSV, GeoJSON; all or nothing), seed synthetic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from lbs.cli import main
from lbs.db import make_engine
from lbs.models import Merchant
from tests.deals_factory import bearer, create_deal, make_merchant, make_user
from tests.factories import count_merchants, merchant, seed

CSV_HEADER = "name,category,lat,lon,address,phone,website,price_level,opening_hours,status\n"
GOOD_CSV = CSV_HEADER + (
    'Kahvila Sävy,cafe,60.1699,24.9384,"Aleksanterinkatu 1, Helsinki",+358 9 123,https://savy.example,2,'
    "Mo-Fr 08:00-18:00,active\n"
    "Baari,bar,60.1710,24.9410,,,,,,inactive\n"
    "Leipomo,bakery,60.1720,24.9420,,,,1,,\n"
)


def lbs(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"LBS_DATABASE_URL": database_url})


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def feature(lon: Any, lat: Any, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def collection(*features: Any) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def assert_clean_failure(result: Result) -> None:
    """Non-zero exit through SystemExit with a message, not an unhandled exception."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), (
        f"crashed with {result.exception!r}; output: {result.output}"
    )


def test_db_upgrade_creates_the_schema_on_a_fresh_database(db_kind: str, empty_database_url: str) -> None:
    result = lbs(empty_database_url, "db", "upgrade")
    again = lbs(empty_database_url, "db", "upgrade")

    assert result.exit_code == 0, result.output
    assert again.exit_code == 0, again.output
    engine = make_engine(empty_database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"merchants", "merchant_api_keys", "revision_counters"} <= tables
        if db_kind == "postgresql":
            with engine.connect() as connection:
                assert connection.execute(
                    text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
                ).scalar_one()
                geog = connection.execute(
                    text(
                        "SELECT udt_name FROM information_schema.columns "
                        "WHERE table_name = 'merchants' AND column_name = 'geog'"
                    )
                ).scalar_one()
                assert geog == "geography"
        assert count_merchants(engine) == 0
    finally:
        engine.dispose()


def test_import_csv_writes_every_row(database_url: str, engine: Engine, tmp_path: Path) -> None:
    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "shops.csv", GOOD_CSV)))

    assert result.exit_code == 0, result.output
    assert "3" in result.output
    with Session(engine) as session:
        rows = {m.name: m for m in session.execute(select(Merchant)).scalars()}
    assert set(rows) == {"Kahvila Sävy", "Baari", "Leipomo"}
    savy = rows["Kahvila Sävy"]
    assert (savy.category, savy.lat, savy.lon, savy.price_level) == ("cafe", 60.1699, 24.9384, 2)
    assert (savy.address, savy.opening_hours, savy.timezone) == (
        "Aleksanterinkatu 1, Helsinki",
        "Mo-Fr 08:00-18:00",
        "Europe/Helsinki",
    )
    assert (rows["Baari"].status, rows["Leipomo"].status) == ("inactive", "active")


def test_import_geojson_reads_lon_lat_order(database_url: str, engine: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "shops.geojson",
        collection(
            feature(139.76, 35.68, name="Tokyo", category="restaurant"),
            feature(-0.1276, 51.5072, name="London", category="bar"),
        ),
    )

    result = lbs(database_url, "merchants", "import", str(path))

    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        rows = {m.name: (m.lat, m.lon, m.timezone) for m in session.execute(select(Merchant)).scalars()}
    assert rows == {"Tokyo": (35.68, 139.76, "Asia/Tokyo"), "London": (51.5072, -0.1276, "Europe/London")}


def test_import_csv_with_bad_rows_names_each_line_and_field_and_writes_nothing(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    seed(engine, [merchant("already there", 1.0, 1.0)])
    content = (
        "name,category,lat,lon\n"  # line 1
        "Good,cafe,60.1,24.9\n"  # line 2
        "Too far north,cafe,91,24.9\n"  # line 3
        "Good too,bar,60.2,24.9\n"  # line 4
        "Pub,pub,60.3,24.9\n"  # line 5
        "No number,cafe,sixty,24.9\n"  # line 6
    )

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "bad.csv", content)))

    assert_clean_failure(result)
    for line, field in [(3, "lat"), (5, "category"), (6, "lat")]:
        assert f"line {line}: {field}" in result.output, result.output
    assert "line 2" not in result.output and "line 4" not in result.output
    assert count_merchants(engine) == 1


def test_import_geojson_with_bad_features_names_each_feature_and_writes_nothing(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "bad.geojson",
        collection(
            feature(24.9, 60.1, name="Good", category="cafe"),
            feature(24.9, 95.0, name="Off the globe", category="cafe"),
            feature(24.9, 60.1, name="Unknown kind", category="pub"),
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
                "properties": {},
            },
        ),
    )

    result = lbs(database_url, "merchants", "import", str(path))

    assert_clean_failure(result)
    for number, field in [(2, "lat"), (3, "category"), (4, "geometry")]:
        assert f"feature {number}: {field}" in result.output, result.output
    assert "feature 1" not in result.output
    assert count_merchants(engine) == 0


MALFORMED_GEOJSON = {
    "top-level-array": ("[1, 2]", None),
    "top-level-string": ('"merchants"', None),
    "feature-is-a-string": (json.dumps({"type": "FeatureCollection", "features": ["shop"]}), 1),
    "geometry-is-a-list": (
        json.dumps(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": [24.9, 60.1]}]}
        ),
        1,
    ),
    "properties-is-a-string": (
        collection(
            feature(24.9, 60.1, name="Good", category="cafe"), {**feature(24.9, 60.1), "properties": "cafe"}
        ),
        2,
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_GEOJSON))
def test_malformed_geojson_is_reported_not_crashed_on(
    case: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    content, bad_feature = MALFORMED_GEOJSON[case]

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "odd.geojson", content)))

    assert_clean_failure(result)
    if bad_feature is not None:
        assert f"feature {bad_feature}" in result.output, result.output
    assert count_merchants(engine) == 0


def test_csv_that_is_not_utf8_is_reported_not_crashed_on(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    content = "name,category,lat,lon\nCafé Latin-1,cafe,60.1,24.9\n".encode("latin-1")

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "latin1.csv", content)))

    assert_clean_failure(result)
    assert "latin1.csv" in result.output, result.output
    assert count_merchants(engine) == 0


def test_csv_row_with_more_cells_than_columns_is_named(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    content = "name,category,lat,lon\nA,cafe,60.1,24.9\nB,cafe,60.1,24.9,extra\n"

    result = lbs(database_url, "merchants", "import", str(write(tmp_path, "wide.csv", content)))

    assert_clean_failure(result)
    assert "line 3" in result.output
    assert count_merchants(engine) == 0


def test_import_of_a_missing_file_is_a_usage_error(database_url: str, tmp_path: Path) -> None:
    result = lbs(database_url, "merchants", "import", str(tmp_path / "nowhere.csv"))

    assert result.exit_code == 2
    assert "nowhere.csv" in result.output


def test_seed_synthetic_writes_a_city_once(database_url: str, engine: Engine) -> None:
    result = lbs(database_url, "seed", "synthetic", "--merchants", "100")
    again = lbs(database_url, "seed", "synthetic", "--merchants", "100", "--if-empty")

    assert result.exit_code == 0, result.output
    assert again.exit_code == 0, again.output
    assert count_merchants(engine) == 100
    with Session(engine) as session:
        positions = session.execute(select(Merchant.lat, Merchant.lon, Merchant.timezone)).all()
    # A 60 x 60 km square around Helsinki.
    assert all(59.89 < lat < 60.45 and 24.39 < lon < 25.49 for lat, lon, _ in positions)
    assert {tz for _, _, tz in positions} <= {"Europe/Helsinki"}


def test_imported_merchants_are_found_nearby(database_url: str, tmp_path: Path, make_app: Any) -> None:
    assert (
        lbs(database_url, "merchants", "import", str(write(tmp_path, "shops.csv", GOOD_CSV))).exit_code == 0
    )

    body = make_app().test_client().get("/v1/nearby?lat=60.1699&lon=24.9384&radius_m=1000").get_json()

    assert [i["merchant"]["name"] for i in body["items"]] == ["Kahvila Sävy", "Leipomo"]


def test_db_check_finds_books_that_do_not_balance(
    database_url: str, engine: Engine, client: FlaskClient
) -> None:
    _, key = make_merchant(client)
    deal_id, claimed = create_deal(client, key, publish=True)["id"], 3
    for n in range(claimed):
        headers = {**bearer(make_user(client)[1]), "Idempotency-Key": f"k{n}"}
        assert client.post(f"/v1/deals/{deal_id}/claim", headers=headers).status_code == 201

    balanced = lbs(database_url, "db", "check")
    assert balanced.exit_code == 0, balanced.output
    assert "books balance" in balanced.output

    with engine.begin() as conn:  # a unit taken with no voucher (overselling the schema refuses)
        conn.execute(
            text("UPDATE deals SET quantity_claimed = :n WHERE id = :id"), {"n": claimed + 1, "id": deal_id}
        )
    unbalanced = lbs(database_url, "db", "check")
    assert unbalanced.exit_code == 1
    assert f"deal {deal_id}: {claimed + 1} claimed but {claimed} vouchers" in unbalanced.output
