"""Anonymous users: tokens stored hashed, and a limit on how fast one address makes them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text

from tests.problems import assert_problem


def test_a_user_token_is_shown_once_and_stored_as_its_sha256(
    make_app: Callable[..., OpenAPI], engine: Engine
) -> None:
    client = make_app().test_client()

    body = client.post("/v1/users").get_json()

    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT token_sha256 FROM users WHERE id = :id"), {"id": body["user_id"]}
        ).scalar_one()
    assert body["token"].startswith("lbs_ut_")
    assert stored == hashlib.sha256(body["token"].encode()).hexdigest()


def test_one_address_cannot_mint_users_without_limit(
    make_app: Callable[..., OpenAPI], engine: Engine
) -> None:
    client = make_app(rate_limit_new_users="3/minute").test_client()

    statuses = [client.post("/v1/users").status_code for _ in range(3)]
    refused = client.post("/v1/users")
    elsewhere = client.post("/v1/users", environ_base={"REMOTE_ADDR": "192.0.2.7"})

    assert statuses == [201, 201, 201]
    assert_problem(refused, 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert elsewhere.status_code == 201
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 4
