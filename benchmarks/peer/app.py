"""The peer of benchmarks/http.py: the plain PostGIS app lbs is measured against.

What a competent developer writes in an hour for "merchants near me": Flask, gunicorn
(the same workers and threads as `lbs serve`), a psycopg_pool connection pool of one
connection per thread, and one query on lbs's own ``merchants`` table::

    SELECT id, name, category, lat, lon, ST_Distance(geog, q) FROM merchants
    WHERE status = 'active' AND ST_DWithin(geog, q, radius_m)
    ORDER BY geog <-> q LIMIT 20

``geog`` is the ``geography(Point, 4326)`` column the first migration generates from
lat/lon, with its GiST index ``ix_merchants_geog``: the ``<->`` order is a KNN scan of that
index that stops after 20 rows, so the query costs about the same at 1 km and at 5 km. It
ranks nothing, knows no users, deals or opening hours and writes no events: it is the
floor a location service's read path is compared with, not a competitor.

One setting is not a default: ``jit=off`` on its connections. PostgreSQL's cost estimate
for the 5 km KNN scan is above ``jit_above_cost``, and compiling the query takes ~200 ms
for ~0.5 ms of work; anyone who had run it once would turn JIT off.

Run by benchmarks/http.py; by hand, from the repository root::

    PEER_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/lbs_bench PEER_POOL_SIZE=4 \\
      .venv/bin/gunicorn --chdir benchmarks/peer --workers 2 --threads 4 'app:create_app()'
    curl 'http://127.0.0.1:8000/nearby?lat=60.17&lon=24.94&radius_m=1000'

``GET /healthz`` answers once the pool has its connections and the database answers.
``GET /search`` is benchmarks/text_search.py's peer, ``GET /insights`` benchmarks/insights.py's
(a merchant's funnel per bucket from the raw events: insights_sql.py).
"""

from __future__ import annotations

import os
from datetime import date

from flask import Flask, Response, json, request
from insights_sql import BUCKETS, peer_insights
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

NEARBY = """
SELECT id, name, category, lat, lon, ST_Distance(geog, q) AS distance_m
FROM merchants, (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS q) AS point
WHERE status = 'active' AND ST_DWithin(geog, q, %(radius_m)s)
ORDER BY geog <-> q
LIMIT 20
"""
MAX_RADIUS_M = 50_000
# benchmarks/text_search.py's peer: PostgreSQL full text (a tsvector of the folded name and
# category, GIN-indexed, made by that benchmark in its own database) plus ST_DWithin.
SEARCH = """
SELECT id, name, category, lat, lon, ST_Distance(geog, q, false) AS distance_m
FROM merchants, (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS q) AS point
WHERE status = 'active' AND search_words @@ to_tsquery('simple', unaccent(%(words)s))
  AND ST_DWithin(geog, q, %(radius_m)s, false)
ORDER BY geog <-> q
LIMIT 20
"""


def ts_query(text: str) -> str:
    """Every word, the last as a prefix: 'sushi ka' -> 'sushi & ka:*'."""
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return " & ".join(words) + ":*" if words else ""


def libpq_url(url: str) -> str:
    """lbs's SQLAlchemy URL (postgresql+psycopg://...) as libpq takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def bad_request(detail: str) -> Response:
    return Response(json.dumps({"error": detail}), 400, mimetype="application/json")


def create_app() -> Flask:
    app = Flask(__name__)
    size = int(os.environ.get("PEER_POOL_SIZE", "4"))
    # Made in each worker after the fork (no --preload): connections are not shared.
    pool = ConnectionPool(
        libpq_url(os.environ["PEER_DATABASE_URL"]),
        min_size=size,
        max_size=size,
        kwargs={"options": "-c jit=off", "row_factory": dict_row},
        open=True,
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with pool.connection() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok"}

    @app.get("/nearby")
    def nearby() -> Response:
        try:
            lat = float(request.args["lat"])
            lon = float(request.args["lon"])
            radius_m = float(request.args.get("radius_m", "1000"))
        except (KeyError, ValueError):
            return bad_request("lat, lon and radius_m are numbers")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < radius_m <= MAX_RADIUS_M):
            return bad_request("lat, lon or radius_m out of range")
        with pool.connection() as conn:
            rows = conn.execute(NEARBY, {"lat": lat, "lon": lon, "radius_m": radius_m}).fetchall()
        return Response(json.dumps({"items": rows}), mimetype="application/json")

    @app.get("/search")
    def search() -> Response:
        try:
            lat = float(request.args["lat"])
            lon = float(request.args["lon"])
            radius_m = float(request.args.get("radius_m", "1000"))
            words = ts_query(request.args["q"])
        except (KeyError, ValueError):
            return bad_request("lat, lon and radius_m are numbers, q has words")
        if not (words and -90 <= lat <= 90 and -180 <= lon <= 180 and 0 < radius_m <= MAX_RADIUS_M):
            return bad_request("lat, lon or radius_m out of range, or q without words")
        with pool.connection() as conn:
            params = {"lat": lat, "lon": lon, "radius_m": radius_m, "words": words}
            rows = conn.execute(SEARCH, params).fetchall()
        return Response(json.dumps({"items": rows}), mimetype="application/json")

    @app.get("/insights")
    def insights() -> Response:
        """benchmarks/insights.py's peer: a merchant's funnel per bucket from the raw events."""
        try:
            merchant = int(request.args["merchant_id"])
            first = date.fromisoformat(request.args["from"])
            last = date.fromisoformat(request.args["to"])
            by = request.args.get("by", "day")
        except (KeyError, ValueError):
            return bad_request("merchant_id is a number, from and to are dates")
        if by not in BUCKETS or first > last:
            return bad_request(f"by is one of {sorted(BUCKETS)}; from is not after to")
        with pool.connection() as conn:
            found = peer_insights(conn, by, merchant, first, last)
        buckets = [{"key": k, "numbers": list(v)} for k, v in sorted(found.items())]
        return Response(json.dumps({"buckets": buckets}), mimetype="application/json")

    return app
