"""Mapbox Vector Tiles of merchants, for map clients that draw tiles (z/x/y, web mercator).

Below MERCHANTS_FROM_ZOOM a tile holds the "clusters" layer (counts per H3 cell, as
``cluster=true`` gives them for the tile's box); from that zoom on, the "merchants"
layer: one point per active merchant with its id, category and whether it has a deal
whose validity has begun. Encoded by mapbox-vector-tile, positions in tile pixels
(extent 4096, y down). A merchant exactly on an edge shared by two tiles is in both.
"""

from __future__ import annotations

import math
from datetime import datetime

import mapbox_vector_tile
import numpy as np
from shapely.geometry import Point
from sqlalchemy.orm import Session

from lbs.categories import Category
from lbs.geo.h3box import Box
from lbs.geo.h3clusters import cluster_resolution
from lbs.services.deal_reads import DealReads
from lbs.services.live_index import LiveIndex
from lbs.services.merchant_map import BoxQuery, clusters_with, started_dealers
from lbs.services.nearby import refresh

EXTENT = 4096
MAX_ZOOM = 22
MERCHANTS_FROM_ZOOM = 14
_CATEGORIES = [c.value for c in Category]


def tile_box(z: int, x: int, y: int) -> Box:
    n = 2**z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return Box(min_lng=x / n * 360 - 180, min_lat=lat(y + 1), max_lng=(x + 1) / n * 360 - 180, max_lat=lat(y))


def _pixels(lats: np.ndarray, lngs: np.ndarray, z: int, x: int, y: int) -> np.ndarray:
    """Web-mercator positions inside the tile, in tile pixels (0..EXTENT, y down)."""
    n = 2**z
    lat = np.radians(np.clip(lats, -85.05112878, 85.05112878))
    wx = (lngs + 180.0) / 360.0 * n
    wy = (1.0 - np.log(np.tan(lat) + 1.0 / np.cos(lat)) / math.pi) / 2.0 * n
    return np.column_stack([(wx - x) * EXTENT, (wy - y) * EXTENT])


def tile(session: Session, live: LiveIndex, deals: DealReads, z: int, x: int, y: int, at: datetime) -> bytes:
    """The tile, kept per worker while the index and the merchants with a started deal are
    those it was drawn from (lbs.services.view_cache, as cluster answers are)."""
    refresh(session, live, deals.book)
    generation, dealers = live.generation, started_dealers(deals, at)
    view = live.views.get_or_draw(
        ("tile", z, x, y), generation, dealers, lambda: (_draw(session, live, deals, z, x, y, at, dealers), 0)
    )
    return view.body


def _draw(
    session: Session,
    live: LiveIndex,
    deals: DealReads,
    z: int,
    x: int,
    y: int,
    at: datetime,
    dealers: np.ndarray,
) -> bytes:
    box = tile_box(z, x, y)
    if z < MERCHANTS_FROM_ZOOM:
        resolution = cluster_resolution(z, live.resolutions[-1])
        found = clusters_with(session, live, deals, BoxQuery(box=box, limit=1, at=at), resolution, dealers)
        # Where the GeoJSON clusters say (6 decimals), so that both show the same places.
        lngs, lats = np.round(found.lngs, 6), np.round(found.lats, 6)
        properties = [
            {"cell": f"{cell:x}", "count": count, "with_deals": marked}
            for cell, count, marked in zip(
                found.cells.tolist(), found.counts.tolist(), found.marked.tolist(), strict=True
            )
        ]
        ids: list[int | None] = [None] * len(properties)
        name = "clusters"
    else:
        hits = live.in_box(box)
        with_deal = np.isin(hits.ids, dealers)
        lats, lngs = hits.lats, hits.lngs
        properties = [
            {"category": _CATEGORIES[c], "has_deal": bool(d)}
            for c, d in zip(hits.categories.tolist(), with_deal.tolist(), strict=True)
        ]
        ids = [int(i) for i in hits.ids.tolist()]
        name = "merchants"
    if not properties:
        return b""
    pixels = _pixels(lats, lngs, z, x, y)
    features = [
        {"geometry": Point(px, py), "properties": props, **({"id": i} if i is not None else {})}
        for (px, py), props, i in zip(pixels.tolist(), properties, ids, strict=True)
    ]
    return bytes(
        mapbox_vector_tile.encode(
            [{"name": name, "features": features}], default_options={"y_coord_down": True, "extents": EXTENT}
        )
    )
