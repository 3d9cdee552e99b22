"""create_app(): settings, database, live index, blueprints, error handlers, metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from flask import Response, g, redirect, request, url_for
from flask_cors import CORS
from flask_openapi3 import Info, OpenAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from lbs import metrics
from lbs.api import (
    api_keys,
    deals,
    events,
    insights,
    maps,
    merchant_page,
    merchants,
    nearby,
    ops,
    payments,
    reviews,
    settlements,
    users,
    vouchers,
)  # fmt: skip
from lbs.api.auth import SECURITY_SCHEMES
from lbs.api.bodies import register_body_limits
from lbs.api.context import READS, Runtime
from lbs.api.headers import register_response_headers
from lbs.api.openapi_doc import LbsOpenAPI
from lbs.api.problems import database_problem, register_error_handlers, validation_problem
from lbs.api.ratelimits import RateLimits
from lbs.api.responses import serve
from lbs.config import Settings
from lbs.db import make_engine, make_read_session_factory, make_session_factory
from lbs.deadline import Deadlines
from lbs.payments.outside_deadline import OutsideDeadline
from lbs.payments.provider import PaymentProvider
from lbs.payments.stripe_adapter import make_provider
from lbs.secret_key import load_secret_key
from lbs.services.database_identity import database_id
from lbs.services.deal_book import DealBook
from lbs.services.event_buffer import EventBuffer
from lbs.services.live_index import LiveIndex
from lbs.services.relevance import ModelHolder
from lbs.services.revisions import CHANGED_FLAG
from lbs.services.users import UserCache
from lbs.services.visit_histories import VisitHistories

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None) -> OpenAPI:
    settings = Settings.from_env().with_overrides(test_config)
    logging.basicConfig(level=settings.log_level)
    app = LbsOpenAPI(
        __name__,
        info=Info(title="lbs", version="0.1.0", description="Local merchants and deals near you."),
        security_schemes=SECURITY_SCHEMES,
        doc_prefix="/docs",
        validation_error_status=400,
        validation_error_callback=validation_problem,
        validate_response=True,  # every body through its declared model (lbs.api.responses)
        validate_response_callback=serve,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    engine = make_engine(
        settings.database_url, request_timeout_s=settings.request_timeout_s, pool_size=settings.threads
    )
    live = LiveIndex(
        settings.resolutions,
        settings.index_refresh_s,
        cached_merchants=settings.merchant_cache_size,
        cached_view_bytes=int(settings.view_cache_mb * 2**20),
    )
    book = DealBook(settings.resolutions, settings.index_refresh_s)
    live.listeners.append(book.merchants_changed)
    sessions = make_session_factory(engine)
    read_engine = engine
    if settings.database_read_url:
        read_engine = make_engine(
            settings.database_read_url,
            request_timeout_s=settings.request_timeout_s,
            pool_size=settings.threads,
        )
    read_sessions = make_read_session_factory(read_engine)
    app.extensions["lbs"] = Runtime(
        settings,
        engine,
        sessions,
        live,
        load_secret_key(settings),
        RateLimits.from_settings(settings, engine),
        ModelHolder(Path(settings.model_dir), settings.model_reload_s, partial(_database_id, sessions)),
        book,
        EventBuffer(sessions, settings.event_flush_s, settings.event_buffer_rows),
        UserCache(settings.user_cache_s),
        read_sessions,
        VisitHistories(settings.index_refresh_s, settings.visits_cache_s, settings.visits_cache_users),
        _request_provider(settings),
    )

    register_error_handlers(app)
    register_body_limits(app)
    register_response_headers(app, settings)  # before flask-cors: runs after it
    _register_unit_of_work(app)
    _register_metrics(app)
    payment_blueprints = (payments.buyer, payments.hooks, settlements.counter)
    blueprints = (
        ops.bp, nearby.bp, maps.bp, merchants.bp, api_keys.bp, deals.desk, deals.public, users.bp, events.bp
    )  # fmt: skip
    for blueprint in (
        *blueprints,
        maps.pages,
        merchant_page.pages,
        events.feed,
        insights.desk,
        vouchers.holder,
        vouchers.counter,
        *payment_blueprints,
        reviews.mine,
        reviews.public,
        reviews.desk,
        reviews.moderation,
    ):
        app.register_api(blueprint)
    # flask-openapi3's /docs/ is a page choosing among UIs, of which one is installed:
    # straight to it.
    app.view_functions["openapi.openapi"] = lambda: redirect(url_for("swagger.swagger"), 302)
    # Read endpoints that a map widget embeds may be called from the allowed origins.
    # GET /v1/merchants shares its path with a write, POST: a preflight allows only GET, and
    # lbs.api.headers takes CORS headers off every write's answer. (Not flask-cors's decorator
    # on the view: it made the view's body a response before lbs.api.responses.serve saw it.)
    app.config["CORS_ORIGINS"] = settings.allowed_origins
    reads = {"methods": ["GET"], "origins": settings.allowed_origins}
    CORS(
        app,
        resources={
            r"/v1/nearby$": reads,
            r"/v1/merchants$": reads,
            r"/v1/merchants/\d+$": reads,
            r"/v1/merchants/\d+/deals$": reads,
            r"/v1/merchants/\d+/reviews$": reads,
            r"/v1/deals/\d+$": reads,
            r"/v1/tiles/\d+/\d+/\d+\.mvt$": reads,
        },
    )

    with app.app_context():
        # From where the reads will poll: an index ahead of the replica would list
        # merchants whose rows the replica cannot give yet.
        session = make_session_factory(read_engine)()  # the loads stream rows: in a transaction
        try:
            live.load(session)
            log.info("nearby index: %d merchants in %.2f s", live.size, live.build_seconds)
            book.load(session, datetime.now(UTC))
            log.info("deal book: %d deals", book.size)
        except Exception as exc:  # not migrated yet: /readyz says so, the first query retries
            log.warning("nearby index not loaded at start: %s", type(exc).__name__)
        finally:
            session.close()
            if read_engine is not engine:
                # No connection of the master's for a forked worker to inherit (gunicorn's
                # preload; lbs.gunicorn_conf disposes the primary's engine the same way).
                read_engine.dispose()
    app.wsgi_app = Deadlines(app.wsgi_app, settings.request_timeout_s)  # type: ignore[method-assign]
    return app


def _database_id(sessions: sessionmaker[Session]) -> str:
    """This database's id, which a model must record to be used (ModelHolder)."""
    with sessions() as session:
        return database_id(session)


def _request_provider(settings: Settings) -> PaymentProvider | None:
    provider = make_provider(settings)
    return None if provider is None else OutsideDeadline(provider)


def _register_unit_of_work(app: OpenAPI) -> None:
    @app.after_request
    def _commit(response: Response) -> Response:
        runtime: Runtime = app.extensions["lbs"]
        session = g.pop("db_session", None)
        events = g.pop("pending_events", None)
        if session is not None:
            try:
                response = _end_unit_of_work(runtime, session, response)
            finally:
                session.close()
        if events and response.status_code < 400:
            runtime.events.add(events)  # written in a batch soon (EventBuffer)
        return response

    @app.teardown_request
    def _rollback(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def _end_unit_of_work(runtime: Runtime, session: Session, response: Response) -> Response:
    """Commit what a successful write did, roll back the rest; a failure at COMMIT (the
    database gone, the deadline, a deferred constraint) is the answer instead of the view's."""
    if request.method in READS:
        return response  # nothing to commit: closing ends the read
    if response.status_code >= 400:
        try:
            session.rollback()
        except DBAPIError:  # the connection is gone (cut past the deadline): so is its transaction
            log.warning("rollback after a %d: the database connection was lost", response.status_code)
        return response
    changed = session.info.pop(CHANGED_FLAG, False)
    try:
        session.commit()
    except DBAPIError as error:
        # Whether the COMMIT landed is unknown when the connection broke during it: the
        # client retries (a claim with its Idempotency-Key is then answered from what landed).
        session.rollback()
        return database_problem(error)
    # This worker sees its own writes at once; others within index_refresh_s.
    runtime.deal_book.mark_stale()
    runtime.visits.mark_stale()
    if changed:
        runtime.live_index.mark_stale()
    return response


def _register_metrics(app: OpenAPI) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        started = g.get("request_started")
        if started is not None:
            metrics.LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        return response
