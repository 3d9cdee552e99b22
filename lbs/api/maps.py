"""What map widgets read: GET /v1/merchants?bbox=… as GeoJSON, and vector tiles."""

from __future__ import annotations

import math
from typing import Annotated, Any

import orjson
from flask import Response, current_app, g, render_template, request, send_from_directory
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from werkzeug.wrappers import Response as ResponseBase

from lbs.api.auth import OPTIONAL_USER, optional_user
from lbs.api.context import db_session, deal_reads, runtime, utc_now
from lbs.api.fields import MAP, ON_REQUEST, FieldsOf, chosen
from lbs.api.nearby import GEOJSON, MinRating, SearchText, split_commas, text_query
from lbs.api.problems import register_model
from lbs.api.responses import Media, ref
from lbs.api.schemas import ERRORS, ClusterCollectionOut, MerchantCollectionOut, QueryModel
from lbs.categories import Category
from lbs.config import MAX_LIMIT, MAX_RADIUS_M
from lbs.errors import InvalidParameter
from lbs.geo.h3index import Box
from lbs.services import events, tiles
from lbs.services.cursors import Cursor
from lbs.services.deal_schedule import Instant
from lbs.services.merchant_map import BoxQuery, clusters_in_box, merchants_in_box
from lbs.services.merchant_reads import with_fields
from lbs.services.tiles import MAX_ZOOM

MVT = "application/vnd.mapbox-vector-tile"
bp = APIBlueprint("map", __name__, url_prefix="/v1", abp_tags=[Tag(name="map")])

BBOX_FORMAT = (
    "minLon,minLat,maxLon,maxLat in degrees: longitudes -180 to 180 (minLon > maxLon crosses the "
    "antimeridian), latitudes -90 to 90 with minLat <= maxLat"
)


def _parse_bbox(text: object) -> Box:
    if not isinstance(text, str):
        raise ValueError(f"expected {BBOX_FORMAT}")
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"not four numbers; expected {BBOX_FORMAT}") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"expected four finite numbers: {BBOX_FORMAT}")
    min_lng, min_lat, max_lng, max_lat = values
    if not (-180 <= min_lng <= 180 and -180 <= max_lng <= 180):
        raise ValueError(f"longitudes must be from -180 to 180: {BBOX_FORMAT}")
    if not (-90 <= min_lat <= 90 and -90 <= max_lat <= 90):
        raise ValueError(f"latitudes must be from -90 to 90: {BBOX_FORMAT}")
    if min_lat > max_lat:
        raise ValueError(f"minLat is above maxLat: {BBOX_FORMAT}")
    return Box(min_lng, min_lat, max_lng, max_lat)


@register_model
class BoxParams(QueryModel):
    model_config = ConfigDict(extra="forbid")

    bbox: Annotated[
        Box,
        BeforeValidator(_parse_bbox),
        WithJsonSchema({"type": "string", "description": BBOX_FORMAT, "example": "24.90,60.15,24.98,60.19"}),
    ]
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    cursor: Cursor | None = None
    q: SearchText | None = None
    category: Annotated[list[Category] | None, BeforeValidator(split_commas)] = Field(
        None, description="categories to keep: comma-separated or repeated (category=cafe,bakery)"
    )
    has_deal: bool = Field(False, description="only merchants with a deal claimable at `at`")
    open_now: bool = Field(False, description="only merchants open at `at` (unknown hours: left out)")
    min_rating: MinRating = None
    at: Instant | None = Field(
        None, description="ISO 8601 with offset: deals and hours as of then (default now)"
    )
    cluster: bool = Field(
        False, description="counts per H3 cell at a resolution chosen from `zoom` instead of merchants"
    )
    zoom: int | None = Field(
        None, ge=0, le=MAX_ZOOM, description="the map's zoom (0-22); needed with cluster=true"
    )
    fields: Annotated[
        list[str] | None, FieldsOf(MAP, "every field but hours; clusters have their own, fixed")
    ] = None


# Merchants are written through their model; clusters come encoded (lbs.services.merchant_map).
MERCHANTS_OR_CLUSTERS = Media(
    "Merchants or, with cluster=true, their counts per H3 cell",
    {GEOJSON: MerchantCollectionOut},
    {GEOJSON: {"anyOf": [ref(MerchantCollectionOut), ref(ClusterCollectionOut)]}},
    also=(ClusterCollectionOut,),
)


@bp.get("/merchants", responses={200: MERCHANTS_OR_CLUSTERS, **ERRORS}, security=OPTIONAL_USER)
def merchants_in_view(query: BoxParams) -> Any:
    """Public: active merchants inside a box, as an RFC 7946 FeatureCollection with each
    one's best claimable deal and hours; `total` counts all that match, pages go by id.
    With cluster=true&zoom=Z: one feature per H3 cell instead, with counts.

    With a user token, the merchants (and deals) shown are logged as impressions on the map,
    without a position: the viewport says what the user looked at, not where they stood."""
    user_id = optional_user()
    if query.cluster and query.zoom is None:
        raise InvalidParameter("zoom", "cluster=true needs the map's zoom, an integer from 0 to 22")
    if query.cluster and query.cursor is not None:
        raise InvalidParameter("cursor", "clusters come in one response; leave cursor out with cluster=true")
    if query.cluster and query.fields is not None:
        raise InvalidParameter("fields", "clusters have fixed properties; leave fields out with cluster=true")
    box_query = BoxQuery(
        box=query.bbox,
        limit=query.limit,
        at=query.at or utc_now(),
        cursor=query.cursor,
        categories=tuple(sorted({c.value for c in query.category})) if query.category else None,
        has_deal=query.has_deal,
        open_now=query.open_now,
        text=text_query(query.q),
        min_rating=query.min_rating,
    )
    if query.cluster and query.zoom is not None:
        # Its features are encoded already, as text (lbs.services.merchant_map): sent as they are.
        body = clusters_in_box(db_session(), runtime().live_index, deal_reads(), box_query, query.zoom)
        return Response(orjson.dumps(body), mimetype=GEOJSON)
    body = merchants_in_box(db_session(), runtime().live_index, deal_reads(), box_query)
    if user_id is not None:  # buffered after the response, written in a batch (lbs.app)
        shown = [
            (f["id"], None if f["properties"]["deal"] is None else f["properties"]["deal"]["id"])
            for f in body["features"]
        ]
        g.pending_events = events.impressions(user_id, utc_now(), None, shown, "map")
    names = chosen(query.fields, set(MAP) - ON_REQUEST)
    for feature in body["features"]:
        feature["properties"] = with_fields(feature["properties"], names, box_query.at)
    return body, 200, {"Content-Type": GEOJSON}


@register_model
class TilePath(BaseModel):
    z: int = Field(ge=0, le=MAX_ZOOM, description="zoom, 0-22")
    x: int = Field(ge=0, description="column, 0 to 2^z - 1")
    y: int = Field(ge=0, description="row from the north, 0 to 2^z - 1")


@bp.get(
    "/tiles/<int:z>/<int:x>/<int:y>.mvt",
    responses={200: Media("A Mapbox Vector Tile", {MVT: None}), 304: None, **ERRORS},
)
def merchant_tile(path: TilePath) -> ResponseBase:
    """Public: a Mapbox Vector Tile of the merchants (from zoom 14) or their clusters (below),
    cacheable for a minute (ETag; If-None-Match gets a 304)."""
    last = 2**path.z - 1
    for name, value in (("x", path.x), ("y", path.y)):
        if value > last:
            raise InvalidParameter(name, f"must be from 0 to {last} at zoom {path.z}")
    body = tiles.tile(db_session(), runtime().live_index, deal_reads(), path.z, path.x, path.y, utc_now())
    response = Response(body, mimetype=MVT)
    response.cache_control.public = True
    response.cache_control.max_age = 60
    response.add_etag()
    return response.make_conditional(request)


pages = APIBlueprint("map_pages", __name__)


@register_model
class MapPageParams(QueryModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(60.1699, ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(24.9384, ge=-180, le=180, allow_inf_nan=False)
    radius: float = Field(1000, gt=0, le=MAX_RADIUS_M, allow_inf_nan=False, description="metres shown")
    merchant: int | None = Field(
        None,
        ge=1,
        le=2**63 - 1,
        description="open this merchant's popup (where an embedded map links to claim)",
    )


@pages.get("/map", doc_ui=False)
def map_page(query: MapPageParams) -> str:
    """The widget on a page of its own, on this server's merchants."""
    tiles = runtime().settings.map_tiles_url
    return render_template(
        "map.html", lat=query.lat, lon=query.lon, radius=query.radius, merchant=query.merchant, tiles=tiles
    )


@pages.get("/widget.js", doc_ui=False)
def widget_js() -> ResponseBase:
    """The embeddable map widget (Leaflet, vendored in /static/leaflet)."""
    static = current_app.static_folder
    assert static is not None
    return send_from_directory(static, "widget.js", mimetype="text/javascript", max_age=300)
