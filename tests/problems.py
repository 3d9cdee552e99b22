"""Assertions on RFC 9457 problem responses."""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse

PROBLEM_JSON = "application/problem+json"


def assert_problem(
    response: TestResponse, status: int | None = None, field: str | None = None
) -> dict[str, Any]:
    """A problem+json body with type, title, status and detail; optionally the status and field."""
    body_text = response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON, (
        f"{response.status_code} {response.content_type}: {body_text[:300]}"
    )
    if status is None:
        assert 400 <= response.status_code < 500, f"{response.status_code}: {body_text[:300]}"
    else:
        assert response.status_code == status, f"{response.status_code}: {body_text[:300]}"
    body = response.get_json(force=True)
    for member in ("type", "title", "status", "detail"):
        assert member in body, f"problem without {member!r}: {body}"
    assert body["status"] == response.status_code
    assert isinstance(body["detail"], str) and body["detail"]
    if field is not None:
        assert body.get("field") == field, f"field {body.get('field')!r}, expected {field!r}: {body}"
    return body
