"""PostGIS as a second oracle: /v1/nearby returns what ST_DWithin on geography returns.

Tolerance: ids may differ only for points within 1 m of the query circle. PostGIS
computes sphere distances with its own formulas (and ST_DWithin its own tolerance), so
right at the boundary the two may decide differently; 1 m is far above any rounding
(~1e-9 m) and far below any real error (a missed cell is hundreds of metres). Distances
are compared to ST_Distance(use_spheroid=false) within 1 cm (our response rounds to 1 cm).
"""

from __future__ import annotations

import math
import random

import pytest
from flask.testing import FlaskClient
from geoalchemy2 import Geography
from sqlalchemy import Boolean, Engine, bindparam, cast, func, or_, select

from lbs.models import merchant_geography
from tests.factories import CATEGORIES, points_of, scatter, seed
from tests.lbs.api.pages import walk_nearby
from tests.oracle import destination, haversine_m

BOUNDARY_TOLERANCE_M = 1.0
DISTANCE_TOLERANCE_M = 0.01
CLUSTERS = [(60.17, 24.94), (-17.0, 180.0), (89.97, 0.0), (-89.99, 45.0), (0.0, -0.001)]

pytestmark = pytest.mark.postgis

_G = merchant_geography
_POINT = cast(
    func.ST_SetSRID(func.ST_MakePoint(bindparam("lon"), bindparam("lat")), 4326),
    Geography("POINT", srid=4326),
)
POSTGIS_NEARBY = select(_G.c.id, func.ST_Distance(_G.c.geog, _POINT, False).label("d")).where(
    _G.c.status == "active",
    or_(bindparam("any_category", type_=Boolean), _G.c.category.in_(bindparam("categories", expanding=True))),
    func.ST_DWithin(_G.c.geog, _POINT, bindparam("r"), False),
)


@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_nearby_agrees_with_st_dwithin(engine: Engine, client: FlaskClient) -> None:
    rng = random.Random(42)
    rows = []
    for n, (lat, lon) in enumerate(CLUSTERS):
        rows += scatter(rng, lat, lon, 800, 6000.0, prefix=f"c{n}-")
    seeded = seed(engine, rows)
    points = points_of(seeded)
    compared = boundary_cases = 0

    for _ in range(60):
        c_lat, c_lon = rng.choice(CLUSTERS)
        lat, lon = destination(c_lat, c_lon, rng.uniform(0, 360), rng.uniform(0, 6000))
        radius_m = math.exp(rng.uniform(math.log(10.0), math.log(50_000.0)))
        categories = rng.sample(CATEGORIES, 3) if rng.random() < 0.3 else None
        params = {"lat": lat, "lon": lon, "radius_m": radius_m}
        if categories:
            params["category"] = ",".join(categories)

        walk = walk_nearby(client, params)
        with engine.connect() as connection:
            postgis = dict(
                connection.execute(
                    POSTGIS_NEARBY,
                    {
                        "lat": lat,
                        "lon": lon,
                        "r": radius_m,
                        "any_category": categories is None,
                        "categories": categories or ["-"],
                    },
                ).all()
            )

        ours = set(walk.ids)
        for merchant_id in ours ^ set(postgis):
            row = points.ids.tolist().index(merchant_id)
            d = float(haversine_m(lat, lon, [points.lats[row]], [points.lons[row]])[0])
            assert abs(d - radius_m) <= BOUNDARY_TOLERANCE_M, (
                f"query {params}: merchant {merchant_id} at {d} m is "
                f"{'only ours' if merchant_id in ours else 'only PostGIS'}"
            )
            boundary_cases += 1
        assert abs(walk.totals[0] - len(postgis)) <= len(ours ^ set(postgis))
        for merchant_id, distance_m in zip(walk.ids, walk.distances_m, strict=True):
            if merchant_id in postgis:
                assert abs(distance_m - postgis[merchant_id]) <= DISTANCE_TOLERANCE_M, (merchant_id, params)
        compared += len(ours)

    assert compared > 5000, "the queries found enough merchants to compare"
    assert boundary_cases <= 3, "boundary disagreements are rare"
