"""OpenStreetMap extracts (.osm.pbf) to merchants: named businesses, their tags mapped.

Every named element with a business tag becomes a merchant: nodes at their position;
areas (closed ways, multipolygon relations) at their centroid, or at a point inside them
when the centroid falls outside (an L-shaped mall); an open way at the mean of its nodes.
A relation that is not a multipolygon, or whose rings do not close, is counted and
skipped. The tag mapping is TAGS below and
docs/seeding.md; a shop of an unmapped kind is "other", an amenity, tourism or leisure
value not in TAGS is not a business (a bench, a park, an artwork) and is skipped.

A field OSM gets wrong for our schema (a phone with two numbers, a website without a
scheme, opening hours our parser rejects) is repaired where that is plain (the first
number; https://) or dropped and counted: the merchant is kept. The data is
© OpenStreetMap contributors (ODbL 1.0): whatever shows it must say so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import osmium
import shapely.wkb
from pydantic import ValidationError

from lbs.categories import Category
from lbs.errors import InputFileError
from lbs.services.merchants import ATTRIBUTIONS, MAX_TAGS, MerchantFields

ATTRIBUTION = ATTRIBUTIONS["osm"]

# (key, value) -> category. Key order matters: the first business key an element has wins.
TAGS: Mapping[str, Mapping[str, Category]] = {
    "amenity": {
        "cafe": Category.cafe,
        "ice_cream": Category.cafe,
        "restaurant": Category.restaurant,
        "food_court": Category.restaurant,
        "fast_food": Category.fast_food,
        "bar": Category.bar,
        "pub": Category.bar,
        "biergarten": Category.bar,
        "nightclub": Category.bar,
        "pharmacy": Category.health,
        "dentist": Category.health,
        "doctors": Category.health,
        "clinic": Category.health,
        "veterinary": Category.health,
        "cinema": Category.entertainment,
        "casino": Category.entertainment,
        "theatre": Category.culture,
        "arts_centre": Category.culture,
        "bank": Category.services,
        "bureau_de_change": Category.services,
        "post_office": Category.services,
        "car_rental": Category.services,
        "car_wash": Category.services,
        "driving_school": Category.services,
        "fuel": Category.services,
    },
    "shop": {
        "bakery": Category.bakery,
        "pastry": Category.bakery,
        "confectionery": Category.bakery,
        "supermarket": Category.grocery,
        "convenience": Category.grocery,
        "greengrocer": Category.grocery,
        "deli": Category.grocery,
        "butcher": Category.grocery,
        "alcohol": Category.grocery,
        "kiosk": Category.grocery,
        "clothes": Category.fashion,
        "shoes": Category.fashion,
        "jewelry": Category.fashion,
        "bag": Category.fashion,
        "leather": Category.fashion,
        "boutique": Category.fashion,
        "hairdresser": Category.beauty,
        "beauty": Category.beauty,
        "cosmetics": Category.beauty,
        "perfumery": Category.beauty,
        "massage": Category.beauty,
        "optician": Category.health,
        "chemist": Category.health,
        "medical_supply": Category.health,
        "electronics": Category.electronics,
        "computer": Category.electronics,
        "mobile_phone": Category.electronics,
        "hifi": Category.electronics,
        "furniture": Category.home,
        "interior_decoration": Category.home,
        "hardware": Category.home,
        "doityourself": Category.home,
        "bed": Category.home,
        "carpet": Category.home,
        "kitchen": Category.home,
        "houseware": Category.home,
        "garden_centre": Category.home,
        "florist": Category.home,
        "laundry": Category.services,
        "dry_cleaning": Category.services,
        "copyshop": Category.services,
        "travel_agency": Category.services,
        "funeral_directors": Category.services,
        "ticket": Category.services,
    },
    "tourism": {
        "hotel": Category.lodging,
        "hostel": Category.lodging,
        "guest_house": Category.lodging,
        "motel": Category.lodging,
        "apartment": Category.lodging,
        "museum": Category.culture,
        "gallery": Category.culture,
        "theme_park": Category.entertainment,
        "zoo": Category.entertainment,
        "aquarium": Category.entertainment,
    },
    "leisure": {
        "fitness_centre": Category.fitness,
        "sports_centre": Category.fitness,
        "swimming_pool": Category.fitness,
        "bowling_alley": Category.entertainment,
        "escape_game": Category.entertainment,
        "amusement_arcade": Category.entertainment,
        "sauna": Category.beauty,
    },
}


def category_of(tags: Mapping[str, str]) -> Category | None:
    """The category of an element's tags, or None when it is not a business."""
    for key, values in TAGS.items():
        value = tags.get(key)
        if value is None:
            continue
        if value in values:
            return values[value]
        if key == "shop":
            return Category.other
    return None


@dataclass
class OsmMerchants:
    """What an extract yields: merchants by OSM element, and what was skipped or repaired."""

    rows: dict[str, MerchantFields] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)


def _address(tags: Mapping[str, str]) -> str | None:
    street = " ".join(p for p in (tags.get("addr:street"), tags.get("addr:housenumber")) if p)
    town = " ".join(p for p in (tags.get("addr:postcode"), tags.get("addr:city")) if p)
    return ", ".join(p for p in (street, town) if p) or None


def _fields(tags: Mapping[str, str], category: Category, lat: float, lon: float) -> dict[str, object]:
    phone = tags.get("phone") or tags.get("contact:phone")
    website = tags.get("website") or tags.get("contact:website")
    if website and "://" not in website:
        website = "https://" + website
    return {
        "name": tags["name"][:200],
        "category": category,
        "lat": lat,
        "lon": lon,
        "address": _address(tags),
        "phone": phone.split(";")[0].strip() if phone else None,
        "website": website,
        "opening_hours": tags.get("opening_hours"),
        "tags": _cuisines(tags) or None,
    }


def _cuisines(tags: Mapping[str, str]) -> list[str]:
    """OpenStreetMap's cuisine=pizza;italian as words to be found by ("ice_cream": "ice cream")."""
    found = (c.strip().replace("_", " ") for c in tags.get("cuisine", "").split(";"))
    return [c[:40] for c in found if c][:MAX_TAGS]


def _validated(values: dict[str, object], repaired: Counter[str]) -> MerchantFields | None:
    """MerchantFields of the values, dropping an optional field that does not validate."""
    for _ in range(4):
        try:
            return MerchantFields.model_validate(values)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            optional = bad & {"address", "phone", "website", "opening_hours", "tags"}
            if not optional or optional != bad:
                return None
            for name in optional:
                values[name] = None
                repaired[f"{name} dropped (invalid)"] += 1
    return None


_KINDS = {"n": "node", "w": "way", "r": "relation"}
_WKB = osmium.geom.WKBFactory()


def _position(element: osmium.osm.Node | osmium.osm.Way) -> tuple[float, float] | None:
    """A node's location, or the mean of a way's nodes (a closed way's first node once)."""
    if isinstance(element, osmium.osm.Node):
        return (element.location.lat, element.location.lon) if element.location.valid() else None
    points = [(n.location.lat, n.location.lon) for n in element.nodes if n.location.valid()]
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    if not points:
        return None
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def _area_position(area: osmium.osm.Area) -> tuple[float, float] | None:
    """The centroid of an area, or a point surely inside it when the centroid is not."""
    try:
        shape = shapely.wkb.loads(_WKB.create_multipolygon(area), hex=True)
    except RuntimeError:  # osmium could not build the rings
        return None
    if shape.is_empty:
        return None
    point = shape.centroid
    if not shape.contains(point):
        point = shape.representative_point()
    return point.y, point.x


def read(path: Path) -> OsmMerchants:
    """Merchants of an .osm.pbf extract, keyed "osm:node/<id>", "osm:way/<id>" or "osm:relation/<id>";
    a file osmium cannot read raises InputFileError."""
    try:
        return _read(path)
    except RuntimeError as exc:  # osmium's reader: "PBF error: invalid BlobHeader size", …
        raise InputFileError(
            path,
            f"not an OpenStreetMap extract osmium can read ({str(exc).strip()})",
            "give an .osm.pbf file such as ../shared/data/osm-helsinki/Helsinki.osm.pbf "
            "(extracts: https://download.geofabrik.de)",
        ) from None


def _read(path: Path) -> OsmMerchants:
    found = OsmMerchants()
    named = (
        osmium.FileProcessor(str(path))
        .with_areas(osmium.filter.KeyFilter("name"))
        .with_filter(osmium.filter.KeyFilter("name"))
    )
    # Areas come after every node, way and relation: until then, what may become one waits.
    waiting: dict[str, tuple[dict[str, str], Category, tuple[float, float] | None]] = {}
    for element in named:
        tags = dict(element.tags)
        category = category_of(tags)
        if category is None:
            continue
        if isinstance(element, osmium.osm.Area):
            ref = f"osm:{'way' if element.from_way() else 'relation'}/{element.orig_id()}"
            waiting.pop(ref, None)
            _add(found, ref, tags, category, _area_position(element))
        elif isinstance(element, osmium.osm.Relation):
            waiting[f"osm:relation/{element.id}"] = (tags, category, None)
        elif isinstance(element, osmium.osm.Way) and element.is_closed():
            waiting[f"osm:way/{element.id}"] = (tags, category, _position(element))
        elif isinstance(element, osmium.osm.Node | osmium.osm.Way):
            _add(found, f"osm:{_KINDS[element.type_str()]}/{element.id}", tags, category, _position(element))
    for ref, (tags, category, position) in waiting.items():
        if ref.startswith("osm:relation/"):
            found.skipped["relation (not an area)"] += 1
        else:  # a closed way that is not an area (area=no): the mean of its nodes
            _add(found, ref, tags, category, position)
    return found


def _add(
    found: OsmMerchants,
    ref: str,
    tags: Mapping[str, str],
    category: Category,
    position: tuple[float, float] | None,
) -> None:
    if position is None:
        found.skipped["no position"] += 1
        return
    fields = _validated(_fields(tags, category, *position), found.repaired)
    if fields is None:
        found.skipped["invalid"] += 1
    else:
        found.rows[ref] = fields
