"""GET /v1/nearby: merchants within a radius, nearest first, paged by cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from lbs.api.auth import OPTIONAL_USER, optional_user
from lbs.api.context import db_session, runtime, utc_now
from lbs.api.fields import MERCHANT_FIELDS, NEARBY, ON_REQUEST, FieldsOf, chosen
from lbs.api.problems import register_model
from lbs.api.responses import JSON, Media
from lbs.api.schemas import ERRORS, NearbyCollectionOut, NearbyPageOut, QueryModel, comma_list
from lbs.categories import Category
from lbs.config import MAX_LIMIT, MAX_RADIUS_M
from lbs.search.words import MAX_QUERY_CHARS, MAX_QUERY_WORDS, TextQuery
from lbs.services import events
from lbs.services.cursors import Cursor
from lbs.services.deal_schedule import Instant
from lbs.services.merchant_reads import pick, with_fields
from lbs.services.nearby import search_nearby
from lbs.services.nearby_pages import NearbyItem, NearbyQuery, page_to_geojson
from lbs.services.nearby_ranked import Ranking
from lbs.text import PLAIN_PATTERN, WithPattern, plain_text

bp = APIBlueprint("nearby", __name__, url_prefix="/v1", abp_tags=[Tag(name="nearby")])
GEOJSON = "application/geo+json"


def split_commas(value: object) -> object:
    return comma_list(value, "empty category")


def _searchable(text: str) -> str:
    TextQuery.parse(text)  # its ValueError names what is wrong, for the 400 on q
    return text


# The nearby and map filter on a merchant's shown rating (docs/reviews.md).
MinRating = Annotated[
    float | None,
    Field(
        ge=1,
        le=5,
        allow_inf_nan=False,
        description="only merchants whose rating.average is at least this (1-5); without reviews: left out",
    ),
]

SearchText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description=f"text search: merchants having every word in their name or category, "
        f"accents and case ignored; the last word also matches as the beginning of a word "
        f"(type-ahead) unless q ends with a space. 1-{MAX_QUERY_CHARS} characters, at most "
        f"{MAX_QUERY_WORDS} words, no control characters",
        examples=["pizza", "cafe hel"],
    ),
    AfterValidator(plain_text),
    WithPattern(PLAIN_PATTERN),
    AfterValidator(_searchable),
]


def text_query(q: str | None) -> TextQuery | None:
    return None if q is None else TextQuery.parse(q)


@register_model
class NearbyParams(QueryModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude, degrees")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude, degrees")
    radius_m: float = Field(
        1000, gt=0, le=MAX_RADIUS_M, allow_inf_nan=False, description="great-circle radius, metres"
    )
    limit: int = Field(20, ge=1, le=MAX_LIMIT)
    cursor: Cursor | None = None
    q: SearchText | None = None
    category: Annotated[list[Category] | None, BeforeValidator(split_commas)] = Field(
        None, description="categories to keep: comma-separated or repeated (category=cafe,bakery)"
    )
    sort: Literal["relevance", "distance", "rating", "deal_ending"] = Field(
        "relevance",
        description="relevance: ranked for the user (bearer token) at this place and hour, with "
        "reasons, once a model is trained (`lbs train`), else distance; with q, by how well and "
        "how near each matches (match x 1000 / (1000 + distance_m)); distance: nearest first; "
        "rating: best rating.average first, ties nearest first, merchants without reviews last; "
        "deal_ending: soonest-ending claimable deal first (implies has_deal)",
    )
    min_rating: MinRating = None
    has_deal: bool = Field(False, description="only merchants with a deal claimable at `at`")
    open_now: bool = Field(
        False,
        description="only merchants open at `at` by their opening_hours, in their own zone "
        "(unknown hours: left out)",
    )
    at: Instant | None = Field(
        None, description="ISO 8601 with offset: deals and opening hours as of this time (default now)"
    )
    format: Literal["json", "geojson"] = "json"
    fields: Annotated[list[str] | None, FieldsOf(NEARBY, "every field but hours")] = None


@bp.get(
    "/nearby",
    responses={
        200: Media("A page of merchants", {JSON: NearbyPageOut, GEOJSON: NearbyCollectionOut}),
        **ERRORS,
    },
    security=OPTIONAL_USER,
)
def nearby(query: NearbyParams) -> Any:
    """Active merchants within radius_m of (lat, lon): exact, nearest first, ties by id, with deals."""
    user_id = optional_user()
    rt = runtime()
    page = search_nearby(
        db_session(),
        rt.live_index,
        rt.deal_book,
        NearbyQuery(
            lat=query.lat,
            lon=query.lon,
            radius_m=query.radius_m,
            limit=query.limit,
            cursor=query.cursor,
            categories=tuple(sorted({c.value for c in query.category})) if query.category else None,
            sort=query.sort,
            has_deal=query.has_deal,
            open_now=query.open_now,
            at=query.at or utc_now(),
            user_id=user_id,
            text=text_query(query.q),
            min_rating=query.min_rating,
        ),
        Ranking(rt.models, rt.settings.rank_deal_weight, rt.settings.rank_exploration_share, rt.visits),
    )
    if user_id is not None:  # buffered after the response, written in a batch (lbs.app)
        shown = [(i.merchant["id"], None if i.deal is None else i.deal["id"]) for i in page.items]
        g.pending_events = events.impressions(user_id, utc_now(), (query.lat, query.lon), shown, "nearby")
    wants_geojson = query.format == "geojson" or (
        query.format == "json"
        and "format" not in request.args
        and request.accept_mimetypes.best_match(["application/json", GEOJSON]) == GEOJSON
    )
    names = chosen(query.fields, set(NEARBY) - ON_REQUEST)
    if wants_geojson:
        collection = page_to_geojson(page)
        for feature, i in zip(collection["features"], page.items, strict=True):
            feature["properties"] = with_fields(feature["properties"], names, page.at, i.merchant)
        return collection, 200, {"Content-Type": GEOJSON}
    return {
        "total": page.total,
        "ranking": page.ranking,
        **({"model": page.model} if page.model else {}),
        "at": page.at.isoformat(),
        "items": [_item(i, page.at, names) for i in page.items],
        "next_cursor": page.next_cursor,
    }


def _item(i: NearbyItem, at: datetime, names: frozenset[str]) -> dict[str, Any]:
    """An item of the JSON page: the merchant's fields inside `merchant`, the rest beside it."""
    about = {
        "distance_m": i.distance_m,
        **i.hours.public(),
        "deal": i.deal,
        "next_deal": i.next_deal,
        **({"reasons": i.reasons} if i.reasons is not None else {}),
    }
    return {
        "merchant": pick(i.merchant, names & MERCHANT_FIELDS),
        **with_fields(about, names, at, i.merchant),
    }
