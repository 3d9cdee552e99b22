"""Operations: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy import text

from lbs import metrics
from lbs.api.context import db_session, runtime
from lbs.api.problems import problem_response
from lbs.errors import NotReady

bp = APIBlueprint("ops", __name__, abp_tags=[Tag(name="operations")])


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> Any:
    """The database answers and the nearby index is loaded."""
    live = runtime().live_index
    try:
        db_session().execute(text("SELECT 1"))
        live.refresh_if_due(db_session())
    except Exception as exc:  # any failure here means "not ready", reported, not raised
        return problem_response(
            NotReady(f"database unreachable or not migrated: {type(exc).__name__}").to_problem()
        )
    return {"status": "ready", "index_merchants": live.size, "index_revision": live.revision}


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
