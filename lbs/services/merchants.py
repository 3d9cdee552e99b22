"""Merchants: the validated input, creation, bulk import, updates and reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import opening_hours
from pydantic import AfterValidator, ConfigDict, Field, HttpUrl, UrlConstraints, field_validator
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from lbs.categories import Category
from lbs.errors import Forbidden, NotFound
from lbs.geo.timezones import timezone_at
from lbs.models import Merchant
from lbs.services.request_bodies import JsonBody, PartialUpdate, refuse_null
from lbs.services.revisions import next_revision
from lbs.text import PlainText

Status = Literal["active", "inactive", "closed"]
# What a merchant imported from a source must show wherever it is shown, by source_ref prefix.
ATTRIBUTIONS = {"osm": "© OpenStreetMap contributors"}


def _valid_opening_hours(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        opening_hours.OpeningHours(value)
    except opening_hours.ParserError as exc:  # type: ignore[attr-defined]  # missing from its stubs
        first = str(exc).strip().splitlines()[-1].strip(" =")
        raise ValueError(f"not an OSM opening_hours expression ({first})") from None
    return value


OpeningHours = Annotated[str, Field(max_length=1000), AfterValidator(_valid_opening_hours)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Phone = Annotated[str, Field(max_length=40, pattern=r"^\+?[0-9][0-9 ()./-]{2,39}$")]
WEBSITE_MAX = 500  # the column's length


def _fits_the_column(url: HttpUrl) -> HttpUrl:
    # Normalising can lengthen a URL (a trailing "/", an IDN host in punycode).
    if len(str(url)) > WEBSITE_MAX:
        raise ValueError(f"longer than {WEBSITE_MAX} characters once normalised ({len(str(url))})")
    return url


Website = Annotated[HttpUrl, UrlConstraints(max_length=WEBSITE_MAX), AfterValidator(_fits_the_column)]


MAX_TAGS = 20


def _distinct_tags(tags: list[str]) -> list[str]:
    """Each tag once (case aside), in the order given."""
    first: dict[str, str] = {}
    for tag in tags:
        first.setdefault(tag.casefold(), tag)
    return list(first.values())


Tag = Annotated[PlainText, Field(min_length=1, max_length=40)]
Tags = Annotated[
    list[Tag],
    Field(max_length=MAX_TAGS, description='words it is found by besides name and category: ["pizza"]'),
    AfterValidator(_distinct_tags),
]


class MerchantFields(JsonBody):
    """What an operator may set on a merchant (also one row of an import file)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: PlainText = Field(min_length=1, max_length=200)
    category: Category
    lat: Latitude
    lon: Longitude
    address: PlainText | None = Field(None, max_length=300)
    phone: Phone | None = None
    website: Website | None = None
    price_level: int | None = Field(None, ge=1, le=4, description="1 (cheap) to 4 (expensive)")
    opening_hours: OpeningHours | None = None
    tags: Tags | None = None
    status: Status = "active"


class MerchantChanges(PartialUpdate):
    """A partial update: only the fields given are changed."""

    NEVER_NULL = ("name", "category", "lat", "lon", "status")

    name: PlainText | None = Field(None, min_length=1, max_length=200)
    category: Category | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: PlainText | None = Field(None, max_length=300)
    phone: Phone | None = None
    website: Website | None = None
    price_level: int | None = Field(None, ge=1, le=4)
    opening_hours: OpeningHours | None = None
    tags: Tags | None = None
    status: Status | None = None

    _never_null = field_validator(*NEVER_NULL)(refuse_null)


def _row_values(fields: MerchantFields, revision: int, now: datetime) -> dict[str, Any]:
    values = fields.model_dump(mode="json")
    values.update(
        timezone=timezone_at(fields.lat, fields.lon),
        revision=revision,
        created_at=now,
        updated_at=now,
    )
    return values


def create_merchant(session: Session, fields: MerchantFields, now: datetime) -> Merchant:
    merchant = Merchant(**_row_values(fields, next_revision(session), now))
    session.add(merchant)
    session.flush()
    return merchant


def import_merchants(session: Session, rows: Sequence[MerchantFields], now: datetime) -> int:
    """Insert validated rows in one statement batch under one revision; all or nothing."""
    if not rows:
        return 0
    revision = next_revision(session)
    values = [_row_values(row, revision, now) for row in rows]
    for start in range(0, len(values), 10_000):
        session.execute(insert(Merchant), values[start : start + 10_000])
    return len(values)


@dataclass(frozen=True)
class Upserted:
    inserted: int
    updated: int
    unchanged: int


def upsert_by_source_ref(
    session: Session, rows: Sequence[tuple[str, MerchantFields]], now: datetime
) -> Upserted:
    """Merchants keyed by what they were imported from ("osm:node/123"): new ones inserted,
    changed ones updated (a new revision), the same ones left alone; all in the caller's
    transaction."""
    by_ref = dict(rows)  # a ref given twice: the last wins
    existing = {
        ref: row
        for ref, *row in session.execute(
            select(Merchant.source_ref, Merchant.id, *_FIELD_COLUMNS).where(Merchant.source_ref.is_not(None))
        )
    }
    fresh: list[str] = []
    changed: list[tuple[int, MerchantFields, dict[str, Any]]] = []
    unchanged = 0
    for ref, fields in by_ref.items():
        values = fields.model_dump(mode="json")
        if ref not in existing:
            fresh.append(ref)
        elif dict(zip(_FIELD_NAMES, existing[ref][1:], strict=True)) != values:
            changed.append((existing[ref][0], fields, values))
        else:
            unchanged += 1
    if fresh or changed:
        revision = next_revision(session)
        inserts = [{**_row_values(by_ref[ref], revision, now), "source_ref": ref} for ref in fresh]
        for start in range(0, len(inserts), 10_000):
            session.execute(insert(Merchant), inserts[start : start + 10_000])
        updates = [
            {
                **values,
                "id": merchant_id,
                "timezone": timezone_at(f.lat, f.lon),
                "revision": revision,
                "updated_at": now,
            }
            for merchant_id, f, values in changed
        ]
        if updates:
            session.execute(update(Merchant), updates)
    return Upserted(len(fresh), len(changed), unchanged)


def get_merchant(session: Session, merchant_id: int) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"merchant {merchant_id} does not exist")
    return merchant


def public_merchants(session: Session, merchant_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Public representations by id, read as plain rows (a page of results: no ORM objects)."""
    if not merchant_ids:
        return {}
    rows = session.execute(_PUBLIC_BY_IDS, {"ids": list(merchant_ids)}).mappings()
    return {row["id"]: _public(row) for row in rows}


def update_merchant(
    session: Session, merchant_id: int, changes: MerchantChanges, now: datetime, *, by_operator: bool
) -> Merchant:
    """Apply the fields given. A status the operator set (moderation) is the operator's to
    change: the merchant's own key gets a 403 for it; the operator setting active lifts it."""
    revision = next_revision(session)
    merchant = get_merchant(session, merchant_id)
    values = changes.model_dump(mode="json", exclude_unset=True)
    if "status" in values:
        if by_operator:
            merchant.status_by_operator = values["status"] != "active"
        elif merchant.status_by_operator and values["status"] != merchant.status:
            raise Forbidden(
                f"the operator set this merchant's status to {merchant.status}; "
                "only the operator can change it",
                field="status",
            )
    for key, value in values.items():
        setattr(merchant, key, value)
    if "lat" in values or "lon" in values:
        merchant.timezone = timezone_at(merchant.lat, merchant.lon)
    merchant.revision = revision
    merchant.updated_at = now
    session.flush()
    return merchant


_PUBLIC_COLUMNS = (
    Merchant.id,
    Merchant.name,
    Merchant.category,
    Merchant.lat,
    Merchant.lon,
    Merchant.address,
    Merchant.phone,
    Merchant.website,
    Merchant.price_level,
    Merchant.opening_hours,
    Merchant.tags,
    Merchant.timezone,
    Merchant.status,
    Merchant.created_at,
    Merchant.updated_at,
    Merchant.source_ref,
)


# The keys of a public representation, in order (_public drops source_ref, adds attribution).
PUBLIC_KEYS = (*(column.key for column in _PUBLIC_COLUMNS if column.key != "source_ref"), "attribution")

_FIELD_NAMES = tuple(MerchantFields.model_fields)
_FIELD_COLUMNS = tuple(getattr(Merchant, name) for name in _FIELD_NAMES)

# Built once: constructing the statement per page cost more than running it.
_PUBLIC_BY_IDS = select(*_PUBLIC_COLUMNS).where(Merchant.id.in_(bindparam("ids", expanding=True)))


def _public(values: Mapping[Any, Any]) -> dict[str, Any]:
    public = dict(values)
    source = (public.pop("source_ref") or "").partition(":")[0]
    public["attribution"] = ATTRIBUTIONS.get(source)
    public["created_at"] = public["created_at"].isoformat()
    public["updated_at"] = public["updated_at"].isoformat()
    return public


def merchant_public(merchant: Merchant) -> dict[str, Any]:
    """The public representation: what any client may see."""
    return _public({column.key: getattr(merchant, column.key) for column in _PUBLIC_COLUMNS})
