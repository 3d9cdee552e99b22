"""User tokens replaced and moved (issue 16, defect 11): a rotated token stops, a transfer
code moves the user and their vouchers to a new device once, within its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from tests.deals_factory import bearer, claim, create_deal, make_merchant, make_user
from tests.problems import assert_problem


def vouchers(client: FlaskClient, token: str) -> list[int]:
    response = client.get("/v1/me/vouchers", headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    return [v["id"] for v in response.get_json()["items"]]


def test_a_rotated_token_replaces_the_old_one_for_the_same_user(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    user_id, old = make_user(client)
    voucher = claim(client, old, deal["id"], "rotate-1")

    rotated = client.post("/v1/me/token", headers=bearer(old))
    assert rotated.status_code == 201 and rotated.headers["Cache-Control"] == "no-store"
    new = rotated.get_json()["token"]
    assert rotated.get_json()["user_id"] == user_id and new != old
    assert vouchers(client, new) == [voucher["id"]]
    assert_problem(client.get("/v1/me/vouchers", headers=bearer(old)), 401)  # this worker forgot it at once


def test_a_transfer_code_moves_the_user_once(engine: Engine, client: FlaskClient) -> None:
    _, key = make_merchant(client)
    deal = create_deal(client, key, publish=True)
    user_id, old = make_user(client)
    voucher = claim(client, old, deal["id"], "transfer-1")

    issued = client.post("/v1/me/transfer-code", headers=bearer(old))
    assert issued.status_code == 201, issued.get_data(as_text=True)
    code = issued.get_json()["code"]
    until = datetime.fromisoformat(issued.get_json()["expires_at"])
    assert timedelta(minutes=14) < until - datetime.now(UTC) <= timedelta(minutes=15)
    with engine.connect() as connection:  # kept as a keyed digest, never as the code
        stored = connection.scalar(
            text("SELECT transfer_code_sha256 FROM users WHERE id = :id"), {"id": user_id}
        )
    assert stored is not None and len(stored) == 64 and code.replace("-", "") not in stored.upper()

    moved = client.post("/v1/users/transfer", json={"code": code.lower().replace("-", " ")})
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert moved.get_json()["user_id"] == user_id
    assert vouchers(client, moved.get_json()["token"]) == [voucher["id"]]
    assert_problem(client.get("/v1/me/vouchers", headers=bearer(old)), 401)
    assert_problem(client.post("/v1/users/transfer", json={"code": code}), 404)  # once only
    assert_problem(client.post("/v1/users/transfer", json={"code": "nope"}), 400, "code")


def test_an_expired_or_replaced_transfer_code_moves_nobody(engine: Engine, client: FlaskClient) -> None:
    user_id, token = make_user(client)
    first = client.post("/v1/me/transfer-code", headers=bearer(token)).get_json()["code"]
    second = client.post("/v1/me/transfer-code", headers=bearer(token)).get_json()["code"]
    assert_problem(client.post("/v1/users/transfer", json={"code": first}), 404)  # replaced by the second

    with engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET transfer_code_expires_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(seconds=1), "id": user_id},
        )
    assert_problem(client.post("/v1/users/transfer", json={"code": second}), 404)
    assert vouchers(client, token) == []  # the old device still works
