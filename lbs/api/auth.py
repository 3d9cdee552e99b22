"""Who is calling: the operator's bearer token or a merchant's API key."""

from __future__ import annotations

from typing import Any

from flask import request

from lbs.api.context import db_session, runtime, utc_now
from lbs.errors import Forbidden, Unauthorized
from lbs.services.api_keys import KEY_PREFIX, merchant_id_for_key, sha256_hex, token_matches
from lbs.services.users import TOKEN_PREFIX as USER_TOKEN_PREFIX

# Who may call an operation, as the OpenAPI document states it: three bearer credentials,
# and an operation lists those it accepts (either one; `{}` alone: none needed).
SECURITY_SCHEMES: dict[str, Any] = {
    name: {"type": "http", "scheme": "bearer", "description": description}
    for name, description in (
        ("operator", "the operator's token (lbs operator-token)"),
        ("merchant", "a merchant's API key (lbs_mk_…)"),
        ("user", "a user's token from POST /v1/users (lbs_ut_…)"),
    )
}
Security = list[dict[str, list[str]]]
OPERATOR: Security = [{"operator": []}]
MERCHANT: Security = [{"merchant": []}]
USER: Security = [{"user": []}]
# The merchant on its own record, or the operator on any.
OWNER: Security = [{"merchant": []}, {"operator": []}]
# Public reads: a user's token makes the read count as that user's (and an unknown one is a 401).
OPTIONAL_USER: Security = [{}, {"user": []}]


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    return token.strip()


def is_operator(token: str) -> bool:
    return token_matches(token, runtime().settings.operator_token_sha256)


def authenticate() -> None:
    """The caller is the operator or holds a valid merchant API key (401 otherwise)."""
    token = bearer_token()
    if not is_operator(token):
        merchant_id_for_key(db_session(), token, utc_now())


def caller_is_operator() -> bool:
    """Whether the request's bearer token is the operator's (401 without one)."""
    return is_operator(bearer_token())


def require_operator() -> None:
    """The caller is the operator: 403 for a merchant's working key (valid, not allowed
    here), 401 for anything else (a revoked or unknown key included)."""
    token = bearer_token()
    if not is_operator(token):
        if token.startswith(KEY_PREFIX):
            merchant_id_for_key(db_session(), token, utc_now())  # 401 unless it works
            raise Forbidden("this needs the operator token, not a merchant API key")
        raise Unauthorized("invalid operator token")


def require_merchant(merchant_id: int | None = None) -> int:
    """The caller's merchant id; if merchant_id is given the caller must own it (or be the operator)."""
    token = bearer_token()
    if merchant_id is not None and is_operator(token):
        return merchant_id
    own = merchant_id_for_key(db_session(), token, utc_now())
    if merchant_id is not None and own != merchant_id:
        raise Forbidden(f"this API key belongs to merchant {own}, not {merchant_id}")
    return own


def require_user() -> int:
    """The calling user's id, from the token POST /v1/users issued (401 otherwise)."""
    return runtime().users.user_id(db_session(), bearer_token())


def optional_user() -> int | None:
    """The user if the request carries a user token; an unknown user token is still a 401.

    Other credentials (a merchant key, the operator token) make no user: public reads stay
    public for them.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip().startswith(USER_TOKEN_PREFIX):
        return None
    return runtime().users.user_id(db_session(), token.strip())


def caller_digest() -> str:
    """Who is calling, for rate limits: the SHA-256 of the bearer secret, never the secret."""
    return sha256_hex(bearer_token())
