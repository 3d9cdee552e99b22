"""Merchant import files (CSV or GeoJSON): validated row by row, written all or nothing."""

from __future__ import annotations

import csv
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


def _parse_csv(path: Path) -> tuple[list[MerchantFields], list[dict[str, Any]]]:
    rows: list[MerchantFields] = []
    errors: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            values = {k: (v if v != "" else None) for k, v in record.items() if k is not None}
            if None in record:
                errors.append(
                    {"line": reader.line_num, "field": "row", "message": "more cells than header columns"}
                )
                continue
            try:
                rows.append(MerchantFields.model_validate({k: v for k, v in values.items() if v is not None}))
            except ValidationError as exc:
                errors.extend(_errors_of(exc, {"line": reader.line_num}))
    return rows, errors


def _parse_geojson(path: Path) -> tuple[list[MerchantFields], list[dict[str, Any]]]:
    rows: list[MerchantFields] = []
    errors: list[dict[str, Any]] = []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [], [{"line": exc.lineno, "field": "file", "message": f"not JSON: {exc.msg}"}]
    features = document.get("features") if isinstance(document, dict) else None
    if document.get("type") != "FeatureCollection" or not isinstance(features, list):
        return [], [{"line": 1, "field": "type", "message": "expected a GeoJSON FeatureCollection"}]
    for number, feature in enumerate(features, start=1):
        where = {"feature": number}
        geometry = (feature or {}).get("geometry") or {}
        coords = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            errors.append({**where, "field": "geometry", "message": "expected a Point [lon, lat]"})
            continue
        props = dict(feature.get("properties") or {})
        props.update(lon=coords[0], lat=coords[1])
        try:
            rows.append(MerchantFields.model_validate(props))
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
