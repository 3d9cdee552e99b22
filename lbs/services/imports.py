"""Merchant import files (CSV or GeoJSON): validated row by row, written all or nothing,
keyed so that importing a file again updates its merchants instead of adding them twice.

Each row's key (merchants.source_ref) is its ``ref`` (a CSV column, a GeoJSON property, or
the Feature's ``id``): ``import:ref/<ref>``, which lets a later file rename or move the
merchant; without one, its name and position: ``import:row/<digest>``, so the same row
imported again is the same merchant (a renamed or moved one is then a new merchant).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from lbs.errors import InvalidRows, where
from lbs.services.import_positions import swap_suspects
from lbs.services.merchants import MerchantFields, Upserted, upsert_by_source_ref

REF = "ref"
REF_PREFIX = "import:ref/"
REF_MAX = 64 - len(REF_PREFIX)  # merchants.source_ref is 64 characters
COLUMNS = (*MerchantFields.model_fields, REF)
REQUIRED = tuple(name for name, field in MerchantFields.model_fields.items() if field.is_required())
SHOWN_VALUE_MAX = 60


@dataclass(frozen=True)
class ImportRow:
    where: dict[str, int]  # {"line": N} (CSV) or {"feature": N} (GeoJSON)
    ref: str | None
    fields: MerchantFields

    @property
    def key(self) -> str:
        if self.ref is not None:
            return REF_PREFIX + self.ref
        f = self.fields
        identity = f"{f.name.casefold()}\n{f.lat:.5f}\n{f.lon:.5f}"
        return "import:row/" + hashlib.sha256(identity.encode()).hexdigest()[:32]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_MAX else text[: SHOWN_VALUE_MAX - 1] + "…"


def _errors_of(exc: ValidationError, at: dict[str, int]) -> list[dict[str, Any]]:
    errors = []
    for e in exc.errors(include_url=False):
        message = e["msg"]
        if e["loc"] and e["type"] != "missing":  # the value the row gave, as it was read
            message += f" (got {_shown(e['input'])})"
        errors.append({**at, "field": ".".join(str(p) for p in e["loc"]) or "row", "message": message})
    return errors


def _unknown_names(names: list[str], what: str, at: dict[str, int]) -> list[dict[str, Any]]:
    """An error for each name that is not a field, with the nearest one it may misspell."""
    errors = []
    for name in names:
        if name in COLUMNS:
            continue
        near = difflib.get_close_matches(name, COLUMNS, n=1) or difflib.get_close_matches(
            name.lower(), COLUMNS, n=1
        )
        guess = f"did you mean {near[0]!r}? " if near else ""
        errors.append(
            {**at, "field": name, "message": f"unknown {what}; {guess}the {what}s are {', '.join(COLUMNS)}"}
        )
    return errors


def _ref_of(value: Any, at: dict[str, int]) -> tuple[str | None, list[dict[str, Any]]]:
    if value is None or value == "":
        return None, []
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, [{**at, "field": REF, "message": f"a text or a whole number (got {_shown(value)})"}]
    ref = str(value).strip()
    if not 1 <= len(ref) <= REF_MAX or not ref.isprintable():
        message = f"1 to {REF_MAX} printable characters (got {_shown(value)})"
        return None, [{**at, "field": REF, "message": message}]
    return ref, []


def _row(
    values: dict[str, Any], ref: Any, at: dict[str, int]
) -> tuple[ImportRow | None, list[dict[str, Any]]]:
    checked_ref, errors = _ref_of(ref, at)
    try:
        fields = MerchantFields.model_validate(values)
    except ValidationError as exc:
        return None, errors + _errors_of(exc, at)
    return (None if errors else ImportRow(at, checked_ref, fields)), errors


def _decode(path: Path) -> tuple[str | None, list[dict[str, Any]]]:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [{"line": line, "field": "file", "message": "not UTF-8 text; save the file as UTF-8"}]


def _header_errors(header: list[str] | None) -> list[dict[str, Any]]:
    at = {"line": 1}
    if not header:
        return [
            {
                **at,
                "field": "file",
                "message": f"empty; its first line names the columns ({', '.join(COLUMNS)})",
            }
        ]
    errors = _unknown_names(header, "column", at)
    errors += [{**at, "field": name, "message": "column given twice"} for name in sorted(
        {name for name in header if header.count(name) > 1}
    )]  # fmt: skip
    errors += [
        {**at, "field": name, "message": "required column missing"} for name in REQUIRED if name not in header
    ]
    return errors


def _parse_csv(path: Path) -> tuple[list[ImportRow], list[dict[str, Any]]]:
    text, errors = _decode(path)
    if text is None:
        return [], errors
    reader = csv.DictReader(io.StringIO(text, newline=""))
    # The header alone decides the columns: a misspelt one is caught even when every cell
    # under it is empty (empty cells are "not given", so the rows would never show it).
    if reader.fieldnames is not None:
        reader.fieldnames = [name.strip() for name in reader.fieldnames]
    errors = _header_errors(list(reader.fieldnames or []))
    if errors:
        return [], errors
    rows: list[ImportRow] = []
    for record in reader:
        if None in record:
            errors.append(
                {"line": reader.line_num, "field": "row", "message": "more cells than header columns"}
            )
            continue
        values: dict[str, Any] = {k: v for k, v in record.items() if v not in ("", None)}
        if "tags" in values:  # a cell holds a list as OpenStreetMap does: "pizza;vegan"
            values["tags"] = [t for t in values["tags"].split(";") if t.strip()]
        row, found = _row(values, values.pop(REF, None), {"line": reader.line_num})
        errors += found
        if row is not None:
            rows.append(row)
    return rows, errors


def _parse_geojson(path: Path) -> tuple[list[ImportRow], list[dict[str, Any]]]:
    text, errors = _decode(path)
    if text is None:
        return [], errors
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [{"line": exc.lineno, "field": "file", "message": f"not JSON: {exc.msg}"}]
    features = document.get("features") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("type") != "FeatureCollection"
        or not isinstance(features, list)
    ):
        return [], [{"line": 1, "field": "type", "message": "expected a GeoJSON FeatureCollection"}]
    rows: list[ImportRow] = []
    for number, feature in enumerate(features, start=1):
        at = {"feature": number}
        if not isinstance(feature, dict):
            errors.append({**at, "field": "feature", "message": "expected a GeoJSON Feature object"})
            continue
        geometry = feature.get("geometry")
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point" or not isinstance(coords, list):
            errors.append({**at, "field": "geometry", "message": "expected a Point [lon, lat]"})
            continue
        if len(coords) not in (2, 3):
            errors.append({**at, "field": "geometry", "message": "a Point has 2 (or 3) coordinates"})
            continue
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            errors.append({**at, "field": "properties", "message": "expected an object"})
            continue
        unknown = _unknown_names([name for name in props if name not in ("lat", "lon")], "property", at)
        if unknown:
            errors += unknown
            continue
        values = {k: v for k, v in props.items() if k != REF}
        row, found = _row(
            # Not the Feature's id: exports number their features 1..N, so two unrelated
            # files would rename each other's merchants. A ref is the user's own key.
            {**values, "lon": coords[0], "lat": coords[1]},
            props.get(REF),
            at,
        )
        errors += found
        if row is not None:
            rows.append(row)
    return rows, errors


def _duplicates(rows: list[ImportRow]) -> list[dict[str, Any]]:
    first: dict[str, ImportRow] = {}
    errors = []
    for row in rows:
        seen = first.setdefault(row.key, row)
        if seen is row:
            continue
        if row.ref is not None:
            message = f"{row.ref!r} is also the ref of {where(seen.where)}; each merchant needs its own"
            errors.append({**row.where, "field": REF, "message": message})
        else:
            message = (
                f"the same name and position as {where(seen.where)} (a duplicate; if both are meant, "
                "give each its own ref)"
            )
            errors.append({**row.where, "field": "row", "message": message})
    return errors


def _swaps(rows: list[ImportRow], geojson: bool) -> list[dict[str, Any]]:
    errors = []
    for suspect in swap_suspects([(row.fields.lat, row.fields.lon) for row in rows]):
        f = rows[suspect.index].fields
        if geojson:
            field, given = "geometry", f"[{f.lon}, {f.lat}] looks like [lat, lon] (GeoJSON is [lon, lat])"
        else:
            field, given = "lat", f"lat {f.lat}, lon {f.lon} look swapped"
        message = f"{given}: {suspect.reason}; fix it, or import the positions as given with --keep-positions"
        errors.append({**rows[suspect.index].where, "field": field, "message": message})
    return errors


def import_merchant_file(
    session: Session, path: Path, now: datetime, *, keep_positions: bool = False
) -> Upserted:
    """Validate every row, then insert the new merchants and update the changed ones (by
    key); a bad row, a key given twice or (unless ``keep_positions``) a position that looks
    swapped raises InvalidRows, and nothing is written."""
    geojson = path.suffix.lower() in {".geojson", ".json"}
    rows, errors = _parse_geojson(path) if geojson else _parse_csv(path)
    if not errors:
        errors = _duplicates(rows)
    if not errors and not keep_positions:
        errors = _swaps(rows, geojson)
    if errors:
        raise InvalidRows(errors)
    return upsert_by_source_ref(session, [(row.key, row.fields) for row in rows], now)
