"""Operations: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import threading
from typing import Any, Literal

from flask import Response, current_app, json, render_template
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from lbs import deadline, metrics
from lbs.api.auth import OPERATOR, require_operator
from lbs.api.context import db_session, runtime
from lbs.api.responses import JSON, Media, Out
from lbs.errors import NotReady

bp = APIBlueprint("ops", __name__, abp_tags=[Tag(name="operations")])
# /readyz's time for the database to answer: a probe hears "not ready" within a second.
READYZ_DATABASE_S = 0.75


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
        public_metrics=runtime().settings.metrics_access == "public",
    )


class HealthOut(Out):
    status: Literal["ok"]


class ReadyOut(Out):
    status: Literal["ready", "degraded"] = Field(
        description="degraded: the rate-limit store is unreachable (limits fail as docs/reliability.md says)"
    )
    index_merchants: int = Field(description="merchants in this worker's nearby index")
    index_revision: int
    rate_limit_store: Literal["ok", "unreachable"]
    model: str | None = Field(
        description="version of the ranking model in use (sort=relevance); null: none, distance order"
    )
    model_problem: str | None = Field(
        description="why the newest model in LBS_MODEL_DIR is not the one in use (e.g. trained on another "
        "database); null when it is, or when there is none"
    )


@bp.get("/healthz", responses={200: HealthOut})
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@bp.get("/readyz", responses={200: ReadyOut})
def readyz() -> dict[str, Any]:
    """The database answers and the nearby index is loaded (503 otherwise); "degraded" while
    the rate-limit store is unreachable (new users and redemptions answer 503 meanwhile).
    The ranking model in use, and why the newest is not (still ready: ranking falls back)."""
    rt = runtime()
    live = rt.live_index
    try:
        database_answers(rt.read_sessions, READYZ_DATABASE_S)
        live.refresh_if_due(db_session())
    except Exception as exc:  # any failure here means "not ready", as a 503
        raise NotReady(f"database unreachable or not migrated: {type(exc).__name__}") from exc
    store = rt.rate_limits.store_reachable()
    model = rt.models.get()
    return {
        "status": "ready" if store else "degraded",
        "index_merchants": live.size,
        "index_revision": live.revision,
        "rate_limit_store": "ok" if store else "unreachable",
        "model": None if model is None else model.meta.get("version"),
        "model_problem": rt.models.problem,
    }


def database_answers(sessions: sessionmaker[Session], within_s: float) -> None:
    """Raise unless the database answers a query within ``within_s``. The query runs on a
    thread of its own, so that the answer comes in time even when connecting to a frozen
    server takes libpq's shortest connect timeout (2 s); that thread's own deadline (and the
    watchdog, lbs.db_watchdog) still ends it soon after."""
    failure: list[BaseException] = []

    def ask() -> None:
        try:
            with deadline.within(within_s), sessions() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # reported by the caller
            failure.append(exc)

    asking = threading.Thread(target=ask, name="lbs-readyz", daemon=True)
    asking.start()
    asking.join(within_s)
    if asking.is_alive():
        raise TimeoutError(f"no answer within {within_s} s")
    if failure:
        raise failure[0]


PROMETHEUS_TEXT = "text/plain"
EXPOSITION = Media(
    "Prometheus text exposition", {PROMETHEUS_TEXT: None}, {PROMETHEUS_TEXT: {"type": "string"}}
)


@bp.get("/metrics", responses={200: EXPOSITION}, security=OPERATOR)
def prometheus_metrics() -> Response:
    """Prometheus exposition: requests and latency by route, index size. Operator's token
    needed unless LBS_METRICS_ACCESS=public."""
    if runtime().settings.metrics_access == "operator":
        require_operator()
    live = runtime().live_index
    metrics.INDEX_MERCHANTS.set(live.size)
    metrics.INDEX_BUILD_SECONDS.set(live.build_seconds)
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json", responses={200: Media("OpenAPI 3.1", {JSON: None}, {JSON: {"type": "object"}})})
def openapi_document() -> Response:
    """This API's OpenAPI 3.1 document."""
    return Response(json.dumps(current_app.api_doc), mimetype=JSON)  # type: ignore[attr-defined]
