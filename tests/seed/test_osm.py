"""The OpenStreetMap loader on the real Helsinki extract: what it reads, maps and repairs,
and that a re-import through `lbs seed osm` updates instead of duplicating (both databases)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from lbs.categories import Category
from lbs.cli import main
from lbs.models import Merchant
from seed import osm
from tests.conftest import OPERATOR

HELSINKI = Path(__file__).resolve().parents[3] / "shared" / "data" / "osm-helsinki" / "Helsinki.osm.pbf"


@pytest.fixture(scope="module")
def helsinki() -> osm.OsmMerchants:
    return osm.read(HELSINKI)


def test_every_named_business_is_read_with_its_tags(helsinki: osm.OsmMerchants) -> None:
    assert len(helsinki.rows) == 1018
    maya = helsinki.rows["osm:node/59622323"]
    assert (maya.name, maya.category, maya.address) == (
        "Maya Bar & Grill",
        Category.restaurant,
        "Mikonkatu 18, 00100 Helsinki",
    )
    assert maya.opening_hours == "Mo-Th 11:00-23:00; Fr 11:00-24:00; Sa 12:00-24:00; Su 13:00-23:00"
    assert str(maya.website) == "https://www.maya.fi/"
    assert helsinki.rows["osm:node/55211772"].category == Category.lodging  # Hilton Helsinki Strand
    # A building mapped as a closed way is placed at its centroid: Ateneum, the art museum.
    ateneum = helsinki.rows["osm:way/8033120"]
    assert (ateneum.name, ateneum.category) == ("Ateneum", Category.culture)
    assert ateneum.lat == pytest.approx(60.1700, abs=3e-4) and ateneum.lon == pytest.approx(24.9442, abs=6e-4)
    # Multipolygon relations too, inside their outline: a hotel and a shopping centre.
    for ref, name, category in [
        ("osm:relation/5608", "Marski by Scandic", Category.lodging),
        ("osm:relation/9630", "Kauppakeskus Citycenter", Category.other),
    ]:
        row = helsinki.rows[ref]
        assert (row.name, row.category) == (name, category)
        assert 60.166 < row.lat < 60.172 and 24.937 < row.lon < 24.945  # the centre, by the station
    # cuisine=* as tags, the words q finds them by: "coffee_shop" read as "coffee shop".
    assert helsinki.rows["osm:node/151006932"].tags == ["sushi"]  # Haru Sushi
    assert helsinki.rows["osm:node/247416118"].tags == ["coffee shop"]  # Jääpuiston kahvila
    tagged = [row.tags for row in helsinki.rows.values() if row.tags]
    assert len(tagged) == 175 and sum("pizza" in tags for tags in tagged) >= 10
    categories = Counter(row.category for row in helsinki.rows.values())
    assert categories[Category.restaurant] > 200 and categories[Category.cafe] > 80


def test_what_cannot_be_used_is_counted_not_fatal(helsinki: osm.OsmMerchants) -> None:
    # A tram route (a pub tram) and two streets are relations with no place of their own.
    assert helsinki.skipped == {"relation (not an area)": 3}
    assert helsinki.repaired == {"opening_hours dropped (invalid)": 10, "phone dropped (invalid)": 3}
    assert sum(1 for row in helsinki.rows.values() if row.opening_hours) == 482


@pytest.mark.parametrize(
    ("tags", "category"),
    [
        ({"amenity": "pub"}, Category.bar),
        ({"shop": "optician"}, Category.health),
        ({"shop": "yes"}, Category.other),  # a shop of an unmapped kind is still a business
        ({"amenity": "bench"}, None),  # an amenity that is not a business
        ({"tourism": "artwork"}, None),
        ({"leisure": "park"}, None),
        ({"amenity": "parking", "shop": "bakery"}, Category.bakery),
    ],
)
def test_tags_map_to_categories(tags: dict[str, str], category: Category | None) -> None:
    assert osm.category_of(tags) == category


def lbs_seed_osm(database_url: str) -> str:
    invoked = CliRunner().invoke(main, ["seed", "osm", str(HELSINKI)], env={"LBS_DATABASE_URL": database_url})
    assert invoked.exit_code == 0, invoked.output
    return invoked.output


def test_a_reimport_updates_instead_of_duplicating(database_url: str, engine: Engine) -> None:
    first = lbs_seed_osm(database_url)
    assert "1018 new, 0 updated, 0 unchanged (© OpenStreetMap contributors)" in first
    assert "opening_hours dropped (invalid): 10" in first
    with Session(engine) as session, session.begin():
        session.execute(
            update(Merchant).where(Merchant.source_ref == "osm:node/59622323").values(name="Old name")
        )
        revision_before = session.execute(
            select(Merchant.revision).where(Merchant.source_ref == "osm:way/8033120")
        ).scalar()

    second = lbs_seed_osm(database_url)

    assert "0 new, 1 updated, 1017 unchanged" in second
    with Session(engine) as session:
        assert session.query(Merchant).count() == 1018
        maya = session.execute(
            select(Merchant).where(Merchant.source_ref == "osm:node/59622323")
        ).scalar_one()
        assert maya.name == "Maya Bar & Grill" and maya.timezone == "Europe/Helsinki"
        ateneum_revision = session.execute(
            select(Merchant.revision).where(Merchant.source_ref == "osm:way/8033120")
        ).scalar()
        assert ateneum_revision == revision_before  # unchanged rows keep their revision
        assert maya.revision > revision_before


def test_the_documented_mapping_is_the_one_used() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "seeding.md").read_text()
    for key, values in osm.TAGS.items():
        for value, category in values.items():
            row = next(line for line in docs.splitlines() if line.startswith(f"| `{category.value}` |"))
            assert f"`{key}={value}`" in row, f"{key}={value} -> {category.value} is not in docs/seeding.md"


def test_osm_merchants_carry_the_attribution_wherever_shown(
    database_url: str, engine: Engine, client: FlaskClient
) -> None:
    lbs_seed_osm(database_url)
    with Session(engine) as session:
        maya = session.execute(
            select(Merchant.id).where(Merchant.source_ref == "osm:node/59622323")
        ).scalar_one()
    own = client.post(
        "/v1/merchants",
        json={"name": "Own", "category": "cafe", "lat": 60.1722, "lon": 24.945},
        headers=OPERATOR,
    ).get_json()

    assert client.get(f"/v1/merchants/{maya}").get_json()["attribution"] == "© OpenStreetMap contributors"
    assert client.get(f"/v1/merchants/{own['id']}").get_json()["attribution"] is None
    page = client.get(
        "/v1/nearby", query_string={"lat": 60.1721106, "lon": 24.9449953, "radius_m": 30}
    ).get_json()
    by_id = {i["merchant"]["id"]: i["merchant"]["attribution"] for i in page["items"]}
    assert by_id[maya] == "© OpenStreetMap contributors" and by_id[own["id"]] is None
