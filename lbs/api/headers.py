"""What a browser or a cache may do with an answer: headers on every response.

- ``X-Content-Type-Options: nosniff`` everywhere: a JSON answer is never run as a script.
- A Content-Security-Policy on the HTML pages. `/` and `/docs` may not be framed by other
  sites (clickjacking); `/map` may be, by the origins allowed to read the API
  (LBS_CORS_ORIGINS), and loads scripts only from this server and images from its tiles.
  `/merchant`, where a merchant pastes an API key, runs only this server's own script files
  (no inline script or style, nothing from elsewhere) and may not be framed.
- ``Cache-Control: no-store`` on what carries a secret or a person's data: every answer to a
  write, and to a request with credentials (tokens, API keys and voucher codes are in
  those), unless the view chose its own caching. Public reads keep theirs (ETags).
- CORS headers only on reads: flask-cors answers the preflight of a write without PATCH or
  POST, but it adds Access-Control-Allow-Origin to the write's own answer too, and a
  browser would then let another site read what a simple cross-site POST returned. The
  preflight of a write (a path shared with a read: GET and POST /v1/merchants) gets none
  either.

Registered before flask-cors, so that it runs after it (Flask runs after_request
functions last registered first).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

from lbs.api.context import READS
from lbs.config import Settings

_CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers",
)
# The landing page and Swagger UI (whose page starts itself with an inline script).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# /merchant: its charts are inline SVG (presentation attributes, no style attributes) and
# its CSV download a blob: URL.
MERCHANT_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def map_policy(settings: Settings) -> str:
    """/map: the widget's own scripts and Leaflet from here, tiles from the configured server."""
    images = "'self' data:"
    if settings.map_tiles_url:
        parts = urlsplit(settings.map_tiles_url)
        images += f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    origins = settings.allowed_origins
    ancestors = "*" if origins == "*" else " ".join(origins)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; connect-src 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )


def register_response_headers(app: Flask, settings: Settings) -> None:
    map_page = map_policy(settings)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.mimetype == "text/html":
            on_map = request.path == "/map"
            policy = MERCHANT_PAGE_POLICY if request.path == "/merchant" else PAGE_POLICY
            response.headers["Content-Security-Policy"] = map_page if on_map else policy
            if not on_map:
                response.headers["X-Frame-Options"] = "DENY"
        secret = request.method not in READS or "Authorization" in request.headers
        if secret and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        if request.method not in READS or _preflight_of_a_write():
            for name in _CORS_HEADERS:
                response.headers.pop(name, None)
        return response


def _preflight_of_a_write() -> bool:
    asked = request.headers.get("Access-Control-Request-Method", "").upper()
    return request.method == "OPTIONS" and bool(asked) and asked not in READS
