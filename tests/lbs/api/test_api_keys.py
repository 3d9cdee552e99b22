"""Merchant API keys (issue 16, defect 10): revoked now by the operator or the merchant,
rotated by the merchant with a grace period for the old key; by the API and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from lbs.cli import main
from tests.conftest import OPERATOR
from tests.deals_factory import bearer, make_merchant
from tests.problems import assert_problem


def works(client: FlaskClient, key: str) -> bool:
    status = client.get("/v1/merchants/me", headers=bearer(key)).status_code
    assert status in (200, 401)
    return status == 200


def issue(client: FlaskClient, merchant_id: int) -> tuple[int, str]:
    response = client.post(f"/v1/merchants/{merchant_id}/api-keys", headers=OPERATOR)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    return int(body["key_id"]), str(body["api_key"])


def test_a_revoked_key_stops_at_once_and_the_others_go_on(client: FlaskClient) -> None:
    merchant_id, first = make_merchant(client)
    second_id, second = issue(client, merchant_id)
    other_id, other = make_merchant(client)
    listed = client.get(f"/v1/merchants/{merchant_id}/api-keys", headers=bearer(second)).get_json()["items"]
    first_id = next(k["id"] for k in listed if k["id"] != second_id)
    assert [k["active"] for k in listed] == [True, True] and "api_key" not in listed[0]

    # Another merchant can neither list nor revoke these keys.
    assert_problem(client.get(f"/v1/merchants/{merchant_id}/api-keys", headers=bearer(other)), 403)
    assert_problem(
        client.delete(f"/v1/merchants/{merchant_id}/api-keys/{first_id}", headers=bearer(other)), 403
    )
    assert_problem(client.delete(f"/v1/merchants/{other_id}/api-keys/{first_id}", headers=bearer(other)), 404)

    # The merchant revokes a leaked key with another of its own; the operator can too.
    assert (
        client.delete(f"/v1/merchants/{merchant_id}/api-keys/{first_id}", headers=bearer(second)).status_code
        == 204
    )
    assert not works(client, first) and works(client, second)
    assert (
        client.delete(f"/v1/merchants/{merchant_id}/api-keys/{second_id}", headers=OPERATOR).status_code
        == 204
    )
    assert not works(client, second) and works(client, other)
    listed = client.get(f"/v1/merchants/{merchant_id}/api-keys", headers=OPERATOR).get_json()["items"]
    assert [k["active"] for k in listed] == [False, False]


def test_a_rotated_key_works_through_its_grace_period_then_stops(engine: Engine, client: FlaskClient) -> None:
    _, old = make_merchant(client)

    rotated = client.post("/v1/merchant/api-keys/rotate", json={"grace_hours": 2}, headers=bearer(old))
    assert rotated.status_code == 201, rotated.get_data(as_text=True)
    body = rotated.get_json()
    new = body["api_key"]
    until = datetime.fromisoformat(body["previous_works_until"])
    assert timedelta(hours=1.9) < until - datetime.now(UTC) <= timedelta(hours=2)
    assert works(client, old) and works(client, new)

    # Two hours later (moved in the database: the service reads the time per request).
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE merchant_api_keys SET revoked_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(seconds=1), "id": body["previous_key_id"]},
        )
    assert not works(client, old) and works(client, new)
    assert_problem(client.post("/v1/merchant/api-keys/rotate", json={}, headers=bearer(old)), 401)
    assert_problem(
        client.post("/v1/merchant/api-keys/rotate", json={"grace_hours": 169}, headers=bearer(new)),
        400,
        "grace_hours",
    )
    assert_problem(
        client.post("/v1/merchant/api-keys/rotate", json={}, headers=OPERATOR), 401
    )  # merchants only

    at_once = client.post(
        "/v1/merchant/api-keys/rotate", json={"grace_hours": 0}, headers=bearer(new)
    ).get_json()
    assert not works(client, new) and works(client, at_once["api_key"])


def test_the_cli_lists_and_revokes_keys(database_url: str, client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    runner = CliRunner()
    env = {"LBS_DATABASE_URL": database_url}

    issued = runner.invoke(main, ["merchants", "api-key", str(merchant_id)], env=env)
    assert issued.exit_code == 0, issued.output
    new_key = issued.stdout.strip()
    assert works(client, new_key)
    listed = runner.invoke(main, ["merchants", "api-keys", str(merchant_id)], env=env)
    ids = [int(line.split("\t")[0]) for line in listed.stdout.splitlines()]
    assert len(ids) == 2 and all("works" in line for line in listed.stdout.splitlines())

    revoked = runner.invoke(main, ["merchants", "revoke-key", str(merchant_id), str(max(ids))], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert not works(client, new_key) and works(client, key)
    unknown = runner.invoke(main, ["merchants", "revoke-key", str(merchant_id), "999999"], env=env)
    assert unknown.exit_code != 0 and "no API key 999999" in unknown.output
