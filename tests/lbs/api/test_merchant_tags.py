"""A merchant's tags: set by the operator, the merchant or an import, shown in its
representation, and words `q` finds it by (issue 17: q=pizza should find pizzerias that
are not named so), at once after a change, on both databases."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.conftest import OPERATOR
from tests.deals_factory import bearer, make_merchant
from tests.problems import assert_problem

CENTRE = {"lat": 60.1699, "lon": 24.9384, "radius_m": 2000, "sort": "distance"}


def found(client: FlaskClient, q: str) -> list[str]:
    page = client.get("/v1/nearby", query_string={**CENTRE, "q": q}).get_json()
    return [item["merchant"]["name"] for item in page["items"]]


def in_box(client: FlaskClient, q: str) -> list[str]:
    box = client.get("/v1/merchants", query_string={"bbox": "24.90,60.15,24.98,60.19", "q": q}).get_json()
    return [feature["properties"]["name"] for feature in box["features"]]


def test_tags_are_shown_and_found_by_q_and_a_change_is_found_at_once(client: FlaskClient) -> None:
    body: dict[str, Any] = {"name": "Luigi's", "category": "restaurant", "lat": 60.17, "lon": 24.94,
                            "tags": ["Pizza", "italian", "pizza"]}  # fmt: skip
    created = client.post("/v1/merchants", json=body, headers=OPERATOR)
    assert created.status_code == 201, created.get_json()
    luigi = created.get_json()
    make_merchant(client, name="Pizza Express")  # found by its name, as before
    make_merchant(client, name="Sushi Bar")

    assert luigi["tags"] == ["Pizza", "italian"]  # each once, case aside, as first given
    assert client.get(f"/v1/merchants/{luigi['id']}").get_json()["tags"] == ["Pizza", "italian"]
    assert sorted(found(client, "pizza")) == [
        "Luigi's",
        "Pizza Express",
    ]
    assert found(client, "ital") == ["Luigi's"]  # type-ahead on a tag
    assert in_box(client, "italian") == ["Luigi's"]

    key = client.post(f"/v1/merchants/{luigi['id']}/api-keys", headers=OPERATOR).get_json()["api_key"]
    changed = client.patch(f"/v1/merchants/{luigi['id']}", json={"tags": ["sushi"]}, headers=bearer(key))
    assert changed.status_code == 200 and changed.get_json()["tags"] == ["sushi"]
    assert sorted(found(client, "sushi")) == ["Luigi's", "Sushi Bar"] and found(client, "italian") == []

    cleared = client.patch(f"/v1/merchants/{luigi['id']}", json={"tags": None}, headers=bearer(key))
    assert cleared.get_json()["tags"] is None and found(client, "sushi") == ["Sushi Bar"]


def test_bad_tags_are_a_400_naming_them_and_change_nothing(client: FlaskClient) -> None:
    merchant_id, key = make_merchant(client, name="Kahvila")
    for tags in (["a" * 41], [""], ["a\x00b"], [f"t{i}" for i in range(21)], "pizza", [7]):
        refused = client.patch(f"/v1/merchants/{merchant_id}", json={"tags": tags}, headers=bearer(key))
        assert_problem(refused, 400)
        assert refused.get_json()["field"].startswith("tags"), (tags, refused.get_json())
    assert client.get(f"/v1/merchants/{merchant_id}").get_json()["tags"] is None
