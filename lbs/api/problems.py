"""Every error as RFC 9457 application/problem+json, including validation failures."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from lbs import deadline
from lbs.errors import PROBLEM_BASE, InvalidParameter, LbsError, NotReady
from lbs.text import TEXT_PATTERNS

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
# PostgreSQL's undefined_table and undefined_column: the schema is behind the code.
_SCHEMA_MISSING = {"42P01", "42703"}
# PostgreSQL's query_canceled and SQLite's SQLITE_BUSY: in a request, the statement_timeout
# or the busy timeout that lbs.db bounds by the request's deadline.
_QUERY_CANCELED = "57014"
_SQLITE_BUSY = 5

# Request models by name, so that a validation error can state the allowed range.
_MODELS: dict[str, type[BaseModel]] = {}


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is answered; other members (limit_bytes,
    allowed, ...) are the problem type's extensions."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[dict[str, Any]] | None = None


def register_model(model: type[BaseModel]) -> type[BaseModel]:
    _MODELS[model.__name__] = model
    return model


def problem_response(problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """The problem, written through the model the OpenAPI document shows for errors."""
    body = Problem.model_validate(problem).model_dump_json(exclude_unset=True)
    return Response(body, status=problem["status"], mimetype=PROBLEM_JSON, headers=headers)


def _allowed(model_name: str, field: str) -> str | None:
    model = _MODELS.get(model_name)
    if model is None:
        return None
    schema = model.model_json_schema()
    prop = schema.get("properties", {}).get(field)
    if prop is None:
        return None
    options = prop.get("anyOf", [prop])
    parts: list[str] = []
    defs = schema.get("$defs", {})
    for option in options:
        if option.get("type") == "array":
            option = option.get("items", {})
        if "$ref" in option:
            option = defs.get(option["$ref"].rsplit("/", 1)[-1], {})
        low = option.get("minimum", option.get("exclusiveMinimum"))
        high = option.get("maximum", option.get("exclusiveMaximum"))
        if low is not None or high is not None:
            left = "(" if "exclusiveMinimum" in option else "["
            right = ")" if "exclusiveMaximum" in option else "]"
            parts.append(f"{option.get('type', 'number')} in {left}{low}, {high}{right}")
        elif "enum" in option:
            parts.append("one of " + ", ".join(map(str, option["enum"])))
        elif "maxLength" in option:
            low_len = option.get("minLength", 0)
            text = f"string of {low_len} to {option['maxLength']} characters"
            if option.get("pattern") in TEXT_PATTERNS:
                text += " without control characters"
            elif "pattern" in option:
                text += f" matching {option['pattern']}"
            parts.append(text)
        elif "const" in option:
            parts.append(repr(option["const"]))
    return " or ".join(parts) or None


def validation_problem(error: ValidationError) -> Response:
    """flask-openapi3's validation_error_callback: 400 naming each bad field."""
    errors = []
    for item in error.errors(include_url=False):
        # The field the client sent; the full path too when the error is inside it.
        field = (str(item["loc"][0]) or "(a parameter with no name)") if item["loc"] else "body"
        entry: dict[str, Any] = {"field": field, "message": item["msg"]}
        if len(item["loc"]) > 1:
            entry["path"] = ".".join(str(p) for p in item["loc"])
        allowed = _allowed(error.title, str(item["loc"][0])) if item["loc"] else None
        if allowed:
            entry["allowed"] = allowed
        errors.append(entry)
    first = errors[0]
    detail = f"{first['field']}: {first['message']}"
    if "allowed" in first:
        detail += f" (allowed: {first['allowed']})"
    problem = InvalidParameter(first["field"], detail, errors=errors).to_problem()
    return problem_response(problem)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(LbsError)
    def _lbs_error(error: LbsError) -> Response:
        return problem_response(error.to_problem(), error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        if error.response is not None and error.response.mimetype == PROBLEM_JSON:
            return error.response  # type: ignore[return-value]  # ours, built by problem_response
        status = error.code or 500
        # Werkzeug's own headers (a 405's Allow), with our body's type instead of its HTML's.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return problem_response(
            {
                "type": PROBLEM_BASE + (error.name or "error").lower().replace(" ", "-"),
                "title": error.name,
                "status": status,
                "detail": error.description,
            },
            headers,
        )

    @app.errorhandler(PoolTimeoutError)
    def _no_connection_in_time(_error: PoolTimeoutError) -> Response:
        return _deadline_exceeded()

    app.register_error_handler(DBAPIError, database_problem)

    @app.errorhandler(Exception)
    def _unexpected_error(error: Exception) -> Response:
        return _unexpected(error)


def database_problem(error: DBAPIError) -> Response:
    """The answer to a database error, wherever in the request it happened (the unit of work's
    COMMIT runs after the view, outside the error handlers): unreachable, locked, cut by the
    deadline or not migrated is a 503 to retry; anything else is a bug."""
    if _cut_by_deadline(error):
        return _deadline_exceeded()
    # Unreachable, locked or not migrated: the operator's to fix, the client's to retry.
    not_migrated = getattr(error.orig, "sqlstate", None) in _SCHEMA_MISSING
    if not isinstance(error, OperationalError) and not not_migrated:
        return _unexpected(error)
    log.error("database unavailable: %s", type(error.orig).__name__)
    return problem_response(NotReady("the database is unavailable or not migrated; retry later").to_problem())


def _cut_by_deadline(error: DBAPIError) -> bool:
    if deadline.time_left_s() is None:
        return False
    return (
        deadline.expired()  # e.g. SQLite's progress handler interrupted the statement
        or getattr(error.orig, "sqlstate", None) == _QUERY_CANCELED
        or getattr(error.orig, "sqlite_errorcode", 0) & 0xFF == _SQLITE_BUSY  # or an extended BUSY code
    )


def _deadline_exceeded() -> Response:
    error = deadline.DeadlineExceeded()
    return problem_response(error.to_problem(), error.headers)


def _unexpected(error: Exception) -> Response:
    log.error("unhandled error", exc_info=error)
    return problem_response(
        {
            "type": PROBLEM_BASE + "internal",
            "title": "Internal error",
            "status": 500,
            "detail": "an unexpected error occurred; it has been logged",
        }
    )
