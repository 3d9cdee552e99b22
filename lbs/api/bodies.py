"""Request bodies: how large each endpoint reads, and JSON that does not parse.

Every body is capped before it is read. A request whose Content-Length is over its
endpoint's cap is answered 413 at once; one that streams without a length is cut off at
the cap. The caps fit the largest valid body with room to spare (a deal's 2,000-character
description written entirely as JSON escapes; a batch of 100 events with 64-character ids),
and docs/api.md lists them.

A body sent as JSON that does not parse, or that nests deeper than the parser recurses
(`[[[[…]]]]` a thousand deep), is a 400 naming the body, not a RecursionError reaching the
catch-all.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, request
from werkzeug.exceptions import RequestEntityTooLarge

from lbs.api.problems import problem_response
from lbs.errors import PROBLEM_BASE, InvalidParameter

DEFAULT_BODY_BYTES = 32 * 1024
# Endpoints (Flask's names: blueprint.view) that need more than the default.
BODY_BYTES = {
    "events.post_events": 128 * 1024,
    # A Stripe event carries the whole object it is about.
    "payment_hooks.stripe_webhook": 256 * 1024,
}


def body_limit(endpoint: str | None) -> int:
    """The most bytes the endpoint reads from a request body."""
    return BODY_BYTES.get(endpoint or "", DEFAULT_BODY_BYTES)


class BodyRequest(Request):
    """Flask's request, reporting JSON that does not parse as a 400 naming the body.

    Callers that ask for ``silent`` parsing (flask-openapi3 does, then validates None)
    still get None for a body that is not JSON at all; a body declared as JSON is parsed
    for real and its errors reported.
    """

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            return super().get_json(force=force, silent=silent, cache=cache)
        try:
            return super().get_json(force=force, silent=False, cache=cache)
        except RecursionError:
            raise InvalidParameter("body", "body: the JSON is nested too deeply to parse") from None

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            return super().on_json_loading_failed(e)  # not declared as JSON: 415
        raise InvalidParameter("body", f"body: not valid JSON ({e})") from None


def register_body_limits(app: Flask) -> None:
    app.request_class = BodyRequest

    @app.before_request
    def _cap_body() -> None:
        limit = body_limit(request.endpoint)
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()  # before anything reads a byte of it

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error: RequestEntityTooLarge) -> Any:
        limit = body_limit(request.endpoint)
        return problem_response(
            {
                "type": PROBLEM_BASE + "body-too-large",
                "title": "Body too large",
                "status": 413,
                "detail": f"the body is over {limit:,} bytes, the most this endpoint reads",
                "limit_bytes": limit,
            }
        )
