"""The OpenAPI document as served: every error an operation can answer, as what it is.

flask-openapi3 declares each response model as ``application/json`` and adds a 400 of its
own validation-error array to operations that declare none. lbs answers every error as
an RFC 9457 ``application/problem+json`` Problem (lbs.api.problems), and some errors can
come from any operation: a request queued past its deadline (503), the database gone
(503), a bug (500). So, once the document is generated:

- every error response is ``application/problem+json`` with the Problem schema;
- every operation declares 500 and 503 (with Retry-After), an operation with a body 413,
  an operation with credentials 401 and 403, and one that counts attempts 429;
- the validation-error array flask-openapi3 adds is replaced, and its model dropped;
- the models of operations with several media types (lbs.api.responses.Media) are added.

Two blueprints may share a path (GET /v1/merchants for maps, POST for the operator):
flask-openapi3 keeps the last one's PathItem, so register_api merges them instead.

The services' own 4xx (404, 409, 422) stay declared per operation, where they can occur.
"""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, OpenAPI

from lbs.api.responses import media_schemas

PROBLEM = {"$ref": "#/components/schemas/Problem"}
PROBLEM_JSON = "application/problem+json"
# Operations that count attempts against a rate limit (lbs.api.ratelimits).
RATE_LIMITED = {("post", "/v1/users"), ("post", "/v1/users/transfer"), ("post", "/v1/me/token"),
                ("post", "/v1/deals/{deal_id}/claim"), ("post", "/v1/merchant/vouchers/redeem")}  # fmt: skip
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
_ALWAYS = {
    "500": "Internal error: a bug, logged with a traceback",
    "503": "Not ready, or the request's deadline passed: retry after Retry-After",
}


def problem(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM}}}
    if retry_after:
        response["headers"] = _RETRY_AFTER
    return response


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``doc`` (flask-openapi3's spec JSON) in place as described above."""
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if not status.startswith(("4", "5")):
                    continue
                responses[status] = problem(response.get("description", ""), status in ("429", "503"))
            for status, description in _ALWAYS.items():
                responses.setdefault(status, problem(description, status == "503"))
            if "requestBody" in operation:
                responses.setdefault("413", problem("Body over this endpoint's cap (limit_bytes)"))
            if operation.get("security"):
                responses.setdefault("401", problem("Missing, unknown or revoked credentials"))
                responses.setdefault("403", problem("Valid credentials, not allowed here"))
            if (method, path) in RATE_LIMITED:
                responses.setdefault("429", problem("Rate limit reached", retry_after=True))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("ValidationErrorModel", None)
    schemas.update(media_schemas())
    return doc


class LbsOpenAPI(OpenAPI):
    """flask-openapi3's app, its document finished by finish()."""

    def register_api(self, api: APIBlueprint, **options: Any) -> None:
        shared = {path: self.paths[path] for path in api.paths if path in self.paths}
        super().register_api(api, **options)
        for path, earlier in shared.items():
            merged = self.paths[path]
            for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                if getattr(merged, method) is None and getattr(earlier, method) is not None:
                    setattr(merged, method, getattr(earlier, method))

    def generate_spec_json(self) -> None:
        super().generate_spec_json()
        finish(self.spec_json)
