"""Who may do what: the operator token, merchants' API keys (stored hashed), public reads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR
from tests.factories import Seeded, count_merchants, merchant, seed
from tests.problems import assert_problem

NEW_MERCHANT = {"name": "New", "category": "bar", "lat": 1.0, "lon": 1.0}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def shops(engine: Engine) -> tuple[Seeded, Seeded]:
    a, b = seed(engine, [merchant("Shop A", 60.0, 25.0), merchant("Shop B", 60.001, 25.001)])
    return a, b


def issue_key(client: FlaskClient, merchant_id: int) -> str:
    response = client.post(f"/v1/merchants/{merchant_id}/api-keys", headers=OPERATOR)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["merchant_id"] == merchant_id
    return str(body["api_key"])


def test_a_merchant_key_reads_and_updates_its_own_record(
    shops: tuple[Seeded, Seeded], client: FlaskClient
) -> None:
    a, _ = shops
    key = issue_key(client, a.id)

    me = client.get("/v1/merchants/me", headers=bearer(key))
    patched = client.patch(
        f"/v1/merchants/{a.id}", json={"name": "Shop A+", "price_level": 2}, headers=bearer(key)
    )

    assert me.status_code == 200
    assert (me.get_json()["id"], me.get_json()["name"]) == (a.id, "Shop A")
    assert patched.status_code == 200
    assert client.get(f"/v1/merchants/{a.id}").get_json()["name"] == "Shop A+"


def test_a_merchant_key_cannot_touch_another_merchant(
    shops: tuple[Seeded, Seeded], client: FlaskClient
) -> None:
    a, b = shops
    key = issue_key(client, a.id)
    before = client.get(f"/v1/merchants/{b.id}").get_json()

    response = client.patch(f"/v1/merchants/{b.id}", json={"name": "Hijacked"}, headers=bearer(key))

    assert_problem(response, 403)
    assert client.get(f"/v1/merchants/{b.id}").get_json() == before


def test_a_merchant_key_on_operator_endpoints_is_forbidden(
    shops: tuple[Seeded, Seeded], engine: Engine, client: FlaskClient
) -> None:
    a, b = shops
    key = issue_key(client, a.id)

    assert_problem(client.post("/v1/merchants", json=NEW_MERCHANT, headers=bearer(key)), 403)
    assert_problem(client.post(f"/v1/merchants/{a.id}/api-keys", headers=bearer(key)), 403)
    assert_problem(client.post(f"/v1/merchants/{b.id}/api-keys", headers=bearer(key)), 403)
    assert count_merchants(engine) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        bearer("not-the-operator-token"),
        bearer("lbs_op_test-operator-token-but-longer"),
    ],
    ids=["none", "empty", "no-token", "blank-token", "basic", "wrong", "near-miss"],
)
def test_missing_or_invalid_credentials_are_401(
    headers: dict[str, str], shops: tuple[Seeded, Seeded], engine: Engine, client: FlaskClient
) -> None:
    a, _ = shops

    assert_problem(client.post("/v1/merchants", json=NEW_MERCHANT, headers=headers), 401)
    assert_problem(client.post(f"/v1/merchants/{a.id}/api-keys", headers=headers), 401)
    assert_problem(client.get("/v1/merchants/me", headers=headers), 401)
    assert_problem(client.patch(f"/v1/merchants/{a.id}", json={"name": "x"}, headers=headers), 401)
    assert count_merchants(engine) == 2
    assert client.get(f"/v1/merchants/{a.id}").get_json()["name"] == "Shop A"


def test_an_unknown_merchant_key_is_401(shops: tuple[Seeded, Seeded], client: FlaskClient) -> None:
    a, _ = shops
    issue_key(client, a.id)

    assert_problem(client.get("/v1/merchants/me", headers=bearer("lbs_mk_" + "x" * 43)), 401)
    assert_problem(
        client.patch(f"/v1/merchants/{a.id}", json={"name": "x"}, headers=bearer("lbs_mk_nope")), 401
    )


def test_the_operator_may_update_any_merchant(shops: tuple[Seeded, Seeded], client: FlaskClient) -> None:
    _, b = shops

    response = client.patch(f"/v1/merchants/{b.id}", json={"status": "inactive"}, headers=OPERATOR)

    assert response.status_code == 200
    assert client.get(f"/v1/merchants/{b.id}").get_json()["status"] == "inactive"


def test_keys_are_stored_only_as_hashes(
    shops: tuple[Seeded, Seeded], engine: Engine, client: FlaskClient
) -> None:
    a, b = shops
    keys = [issue_key(client, a.id), issue_key(client, a.id), issue_key(client, b.id)]

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM merchant_api_keys")).mappings().all()

    assert len(set(keys)) == 3
    stored = " ".join(str(value) for row in rows for value in row.values())
    for key in keys:
        assert key not in stored
        assert key[8:] not in stored
    assert sorted(r["key_sha256"] for r in rows) == sorted(
        hashlib.sha256(k.encode()).hexdigest() for k in keys
    )
    # Every key issued works, two for the same merchant included.
    for key, owner in zip(keys, [a, a, b], strict=True):
        assert client.get("/v1/merchants/me", headers=bearer(key)).get_json()["id"] == owner.id


def test_a_key_for_an_unknown_merchant_is_404_and_not_stored(engine: Engine, client: FlaskClient) -> None:
    assert_problem(client.post("/v1/merchants/999/api-keys", headers=OPERATOR), 404)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM merchant_api_keys")).scalar_one() == 0


def test_without_a_configured_operator_token_no_token_is_the_operator(
    shops: tuple[Seeded, Seeded], make_app: Callable[..., OpenAPI], engine: Engine
) -> None:
    client = make_app(operator_token_sha256="").test_client()

    assert_problem(client.post("/v1/merchants", json=NEW_MERCHANT, headers=OPERATOR), 401)
    assert_problem(client.post("/v1/merchants", json=NEW_MERCHANT, headers=bearer("")), 401)
    assert count_merchants(engine) == 2


def test_reads_are_public(shops: tuple[Seeded, Seeded], client: FlaskClient) -> None:
    a, _ = shops

    assert client.get(f"/v1/merchants/{a.id}").status_code == 200
    assert client.get("/v1/nearby?lat=60&lon=25").status_code == 200


@pytest.mark.parametrize("headers", [{}, bearer("lbs_mk_not-a-key"), bearer("wrong-operator-token")])
def test_credentials_are_checked_before_the_body_of_a_write(
    headers: dict[str, str], engine: Engine, client: FlaskClient
) -> None:
    created = client.post("/v1/merchants", json={"name": ""}, headers=headers)
    patched = client.patch("/v1/merchants/1", json={"lat": "north"}, headers=headers)

    assert_problem(created, 401)
    assert_problem(patched, 401)
    assert count_merchants(engine) == 0
