"""Page cursors: opaque URL-safe tokens (base64 of compact JSON) that carry where the next
page starts and a fingerprint of the query they belong to."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import Field

from lbs.errors import InvalidParameter

T = TypeVar("T")
MALFORMED = "cursor is malformed; pass next_cursor from a previous page"
# What encode() makes: unpadded base64url. (The decoder would skip other characters.)
Cursor = Annotated[
    str, Field(max_length=512, pattern=r"^[A-Za-z0-9_-]*$", description="next_cursor of the previous page")
]


def fingerprint(key: list[Any]) -> str:
    """A short digest of what a query is, so a cursor cannot page another query."""
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def encode(fields: dict[str, Any]) -> str:
    raw = json.dumps(fields, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, read: Callable[[dict[str, Any]], T]) -> T:
    """``read`` applied to the token's fields; anything that does not parse is a 400 on ``cursor``."""
    try:
        return read(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))))
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidParameter("cursor", MALFORMED) from None


def encode_id(key: list[Any], last_id: int) -> str:
    """A cursor after ``last_id`` in a listing ordered by id, for the query ``key`` names."""
    return encode({"q": fingerprint(key), "i": last_id})


def decode_id(token: str, key: list[Any], hint: str) -> int:
    """The id an encode_id() cursor holds; one of another query is a 400 with ``hint``
    (e.g. which parameters must stay as they were)."""
    last_id, query = decode(token, lambda raw: (int(raw["i"]), str(raw["q"])))
    if query != fingerprint(key):
        raise InvalidParameter("cursor", f"cursor belongs to another query; {hint}")
    if not 0 <= last_id <= 2**63 - 1:
        raise InvalidParameter("cursor", MALFORMED)
    return last_id
