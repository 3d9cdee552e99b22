"""Merchant import files (CSV or GeoJSON): validated row by row, written all or nothing."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from lbs.errors import InvalidRows
from lbs.services.merchants import MerchantFields, import_merchants


def _errors_of(exc: ValidationError, where: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {**where, "field": ".".join(str(p) for p in e["loc"]) or "row", "message": e["msg"]}
        for e in exc.errors(include_url=False)
    ]


def _decode(path: Path) -> tuple[str | None, list[dict[str, Any]]]:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [{"line": line, "field": "file", "message": "not UTF-8 text; save the file as UTF-8"}]


def _parse_csv(path: Path) -> tuple[list[MerchantFields], list[dict[str, Any]]]:
    text, errors = _decode(path)
    if text is None:
        return [], errors
    rows: list[MerchantFields] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for record in reader:
        if None in record:
            errors.append(
                {"line": reader.line_num, "field": "row", "message": "more cells than header columns"}
            )
            continue
        values = {k: v for k, v in record.items() if v not in ("", None)}
        try:
            rows.append(MerchantFields.model_validate(values))
        except ValidationError as exc:
            errors.extend(_errors_of(exc, {"line": reader.line_num}))
    return rows, errors


def _parse_geojson(path: Path) -> tuple[list[MerchantFields], list[dict[str, Any]]]:
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
    rows: list[MerchantFields] = []
    for number, feature in enumerate(features, start=1):
        where = {"feature": number}
        if not isinstance(feature, dict):
            errors.append({**where, "field": "feature", "message": "expected a GeoJSON Feature object"})
            continue
        geometry = feature.get("geometry")
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point" or not isinstance(coords, list):
            errors.append({**where, "field": "geometry", "message": "expected a Point [lon, lat]"})
            continue
        if len(coords) not in (2, 3):
            errors.append({**where, "field": "geometry", "message": "a Point has 2 (or 3) coordinates"})
            continue
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            errors.append({**where, "field": "properties", "message": "expected an object"})
            continue
        try:
            rows.append(MerchantFields.model_validate({**props, "lon": coords[0], "lat": coords[1]}))
        except ValidationError as exc:
            errors.extend(_errors_of(exc, where))
    return rows, errors


def import_merchant_file(session: Session, path: Path, now: datetime) -> int:
    """Validate every row, then insert all of them; any bad row raises InvalidRows and writes nothing."""
    geojson = path.suffix.lower() in {".geojson", ".json"}
    rows, errors = _parse_geojson(path) if geojson else _parse_csv(path)
    if errors:
        raise InvalidRows(errors)
    return import_merchants(session, rows, now)
