"""Operations: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, render_template
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy import text

from lbs import metrics
from lbs.api.context import db_session, runtime
from lbs.api.problems import problem_response
from lbs.errors import NotReady

bp = APIBlueprint("ops", __name__, abp_tags=[Tag(name="operations")])


@bp.get("/", doc_ui=False)
def home() -> str:
    """A landing page: what the server holds and where to start."""
    live, holder = runtime().live_index, runtime().models
    live.refresh_if_due(db_session())
    model = holder.get()
    query = "lat=60.1699&lon=24.9384&open_now=true"
    return render_template(
        "home.html",
        merchants=f"{live.size:,}",
        model=None if model is None else model.meta.get("version"),
        open_now=f"/v1/nearby?{query}",
        geojson=f"/v1/nearby?{query}&format=geojson",
    )


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> Any:
    """The database answers and the nearby index is loaded (503 otherwise); "degraded" while
    the rate-limit store is unreachable (new users and redemptions answer 503 meanwhile)."""
    rt = runtime()
    live = rt.live_index
    try:
        db_session().execute(text("SELECT 1"))
        live.refresh_if_due(db_session())
    except Exception as exc:  # any failure here means "not ready", reported, not raised
        return problem_response(
            NotReady(f"database unreachable or not migrated: {type(exc).__name__}").to_problem()
        )
    store = rt.rate_limits.store_reachable()
    return {
        "status": "ready" if store else "degraded",
        "index_merchants": live.size,
        "index_revision": live.revision,
        "rate_limit_store": "ok" if store else "unreachable",
    }


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus exposition: requests and latency by route, index size."""
    live = runtime().live_index
    metrics.INDEX_MERCHANTS.set(live.size)
    metrics.INDEX_BUILD_SECONDS.set(live.build_seconds)
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi_document() -> Any:
    """This API's OpenAPI 3.1 document."""
    return current_app.api_doc  # type: ignore[attr-defined]
