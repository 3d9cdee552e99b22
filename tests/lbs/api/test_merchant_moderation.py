"""The operator's status is the operator's (issue 16, defect 8): a merchant whose status the
operator set cannot set another with its own key; its own open/closed stays its own."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import OPERATOR
from tests.deals_factory import bearer, make_merchant
from tests.problems import assert_problem


def patch(client: FlaskClient, merchant_id: int, headers: dict[str, str], **fields: object) -> object:
    return client.patch(f"/v1/merchants/{merchant_id}", json=fields, headers=headers)


def status(client: FlaskClient, merchant_id: int) -> str:
    return str(client.get(f"/v1/merchants/{merchant_id}").get_json()["status"])


def test_a_merchant_cannot_reopen_what_the_operator_closed(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    assert patch(client, merchant_id, OPERATOR, status="closed").status_code == 200

    for attempt in ("active", "inactive"):
        problem = assert_problem(patch(client, merchant_id, bearer(key), status=attempt), 403, "status")
        assert "operator" in problem["detail"]
    assert status(client, merchant_id) == "closed"
    # Its other fields stay its own; resending the status it has changes nothing and is fine.
    renamed = patch(client, merchant_id, bearer(key), name="Renamed", status="closed")
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Renamed"

    assert patch(client, merchant_id, OPERATOR, status="active").status_code == 200  # lifted
    assert patch(client, merchant_id, bearer(key), status="inactive").status_code == 200
    assert status(client, merchant_id) == "inactive"


def test_a_merchants_own_closing_is_its_own_to_undo(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client)
    assert patch(client, merchant_id, bearer(key), status="inactive").status_code == 200
    assert patch(client, merchant_id, bearer(key), status="active").status_code == 200
    assert status(client, merchant_id) == "active"
