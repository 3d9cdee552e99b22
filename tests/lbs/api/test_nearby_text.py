"""q, the text search, on /v1/nearby and the map's box: exactly the merchants having every
word (accents and case aside, the last as a prefix), with every other filter, paged once
each, on both databases; a renamed merchant is found by its new name at once; bad q 400s."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from lbs.search.words import IN_NAME, TextQuery, merchant_words
from tests.conftest import OPERATOR
from tests.deals_factory import create_deal, make_merchant, transition
from tests.factories import Seeded, merchant, seed
from tests.lbs.api.pages import walk_nearby
from tests.oracle import Points, destination, expected_order, haversine_m
from tests.problems import assert_problem

CENTRE = (60.1699, 24.9384)
WORDS = ["Pizzeria", "Pizza", "Café", "CAFÉ", "Sushi", "Bäckerei", "Bar", "Napoli", "Pizzicato", "Ölbar"]
CATEGORIES = ["restaurant", "cafe", "fast_food", "bar", "bakery", "fashion"]
QUERIES = ["piz", "pizza", "Pizza ", "cafe", "CAFÉ ", "backerei", "pizza nap", "olb", "bar", "restaur"]


@pytest.fixture
def town(engine: Engine) -> list[Seeded]:
    """120 merchants up to 2.5 km from the centre, named from WORDS, some at one spot."""
    rng = random.Random(17)
    rows = []
    for k in range(120):
        bearing, distance = (0.0, 700.0) if k % 10 == 0 else (rng.uniform(0, 360), rng.uniform(0, 2500))
        lat, lon = destination(*CENTRE, bearing, distance)
        name = " ".join(rng.sample(WORDS, rng.randint(1, 2))) + f" n{k}"
        rows.append(merchant(name, lat, lon, rng.choice(CATEGORIES)))
    return seed(engine, rows)


def matching(town: list[Seeded], text: str) -> dict[int, float]:
    """Brute force: each merchant having every word of text (the last as a prefix), with its
    match score."""
    query = TextQuery.parse(text)
    found = {}
    for s in town:
        words = merchant_words(s.name, s.category)
        weights = []
        for i, q in enumerate(query.words):
            prefix = query.last_is_prefix and i == len(query.words) - 1
            best = [
                (2 if where & IN_NAME else 0) + (2 if w == q else 1)
                for w, where in words.items()
                if w == q or (prefix and w.startswith(q))
            ]
            weights.append(max(best, default=0))
        if all(weights):
            found[s.id] = sum(weights) / (4 * len(weights))
    return found


def points(town: list[Seeded], keep: set[int]) -> Points:
    return Points.of(
        [s.id for s in town], [s.lat for s in town], [s.lon for s in town], [s.id in keep for s in town]
    )


@pytest.mark.parametrize("text", QUERIES)
def test_q_nearest_first_is_exact_and_pages_once(text: str, town: list[Seeded], client: FlaskClient) -> None:
    params = {"lat": CENTRE[0], "lon": CENTRE[1], "radius_m": 1800, "q": text, "sort": "distance"}
    walk = walk_nearby(client, params, limits=lambda page: 2 + page % 5)

    expected = expected_order(points(town, set(matching(town, text))), CENTRE[0], CENTRE[1], 1800)
    assert expected and walk.ids == expected
    assert set(walk.totals) == {len(expected)}


@pytest.mark.parametrize("text", QUERIES)
def test_q_by_relevance_blends_match_and_distance(text: str, town: list[Seeded], client: FlaskClient) -> None:
    params = {"lat": CENTRE[0], "lon": CENTRE[1], "radius_m": 1800, "q": text}
    walk = walk_nearby(client, params, limits=lambda page: 3 + page % 4)

    scores = matching(town, text)
    expected = expected_order(points(town, set(scores)), CENTRE[0], CENTRE[1], 1800)
    assert sorted(walk.ids) == sorted(expected) and set(walk.totals) == {len(expected)}
    by_id = {s.id: s for s in town}
    distances = [float(haversine_m(*CENTRE, [by_id[i].lat], [by_id[i].lon])[0]) for i in walk.ids]
    relevance = [scores[i] * 1000 / (1000 + d) for i, d in zip(walk.ids, distances, strict=True)]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(relevance)), relevance
    first = client.get("/v1/nearby", query_string=params).get_json()
    assert first["ranking"] == "relevance"


def test_q_with_a_category_and_as_geojson(town: list[Seeded], client: FlaskClient) -> None:
    params = {"lat": CENTRE[0], "lon": CENTRE[1], "radius_m": 2600, "q": "piz", "category": "restaurant,bar"}
    walk = walk_nearby(client, {**params, "sort": "distance"}, limits=lambda _: 4)

    keep = {
        i
        for i in matching(town, "piz")
        if next(s for s in town if s.id == i).category in {"restaurant", "bar"}
    }
    assert walk.ids == expected_order(points(town, keep), CENTRE[0], CENTRE[1], 2600) and keep
    geojson = client.get("/v1/nearby", query_string={**params, "format": "geojson", "limit": 100}).get_json()
    assert {f["id"] for f in geojson["features"]} == keep and geojson["total"] == len(keep)


def test_q_in_a_box_as_merchants_and_as_clusters(town: list[Seeded], client: FlaskClient) -> None:
    box = (24.90, 60.15, 24.96, 60.19)
    ids: list[int] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"bbox": ",".join(map(str, box)), "q": "cafe ", "limit": 5}
        body = client.get("/v1/merchants", query_string={**query, **({"cursor": cursor} if cursor else {})})
        assert body.status_code == 200
        page = body.get_json(force=True)
        ids += [f["id"] for f in page["features"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    expected = sorted(
        i
        for i in matching(town, "cafe ")
        for s in town
        if s.id == i and box[1] <= s.lat <= box[3] and box[0] <= s.lon <= box[2]
    )
    assert expected and ids == expected and page["total"] == len(expected)
    clusters = client.get(
        "/v1/merchants",
        query_string={"bbox": ",".join(map(str, box)), "q": "cafe ", "cluster": "true", "zoom": 13},
    ).get_json(force=True)
    assert clusters["total"] == len(expected) == sum(f["properties"]["count"] for f in clusters["features"])
    everything = client.get(
        "/v1/merchants", query_string={"bbox": ",".join(map(str, box)), "cluster": "true", "zoom": 13}
    ).get_json(force=True)
    assert everything["total"] > clusters["total"]


def test_q_with_has_deal_and_deal_ending(client: FlaskClient) -> None:
    shops = {}
    for k, name in enumerate(["Pizza Deal", "Sushi Deal", "Pizza Plain"]):
        merchant_id, key = make_merchant(client, CENTRE[0] + 0.001 * k, CENTRE[1], name=name)
        if "Deal" in name:
            transition(client, key, create_deal(client, key)["id"], "publish")
        shops[name] = merchant_id
    base = {"lat": CENTRE[0], "lon": CENTRE[1], "q": "pizza"}

    for extra in ({"has_deal": "true"}, {"sort": "deal_ending"}):
        body = client.get("/v1/nearby", query_string={**base, **extra}).get_json()
        assert [i["merchant"]["id"] for i in body["items"]] == [shops["Pizza Deal"]] and body["total"] == 1
    plain = client.get("/v1/nearby", query_string=base).get_json()
    assert {i["merchant"]["id"] for i in plain["items"]} == {shops["Pizza Deal"], shops["Pizza Plain"]}


def test_a_renamed_merchant_is_found_by_its_new_name_at_once(client: FlaskClient) -> None:
    merchant_id, _ = make_merchant(client, *CENTRE, name="Trattoria Napoli")
    params = {"lat": CENTRE[0], "lon": CENTRE[1]}
    assert client.get("/v1/nearby", query_string={**params, "q": "napoli"}).get_json()["total"] == 1

    renamed = client.patch(f"/v1/merchants/{merchant_id}", json={"name": "Osteria Roma"}, headers=OPERATOR)
    assert renamed.status_code == 200

    assert client.get("/v1/nearby", query_string={**params, "q": "napoli"}).get_json()["total"] == 0
    found = client.get("/v1/nearby", query_string={**params, "q": "osteria ro"}).get_json()
    assert [i["merchant"]["name"] for i in found["items"]] == ["Osteria Roma"]
    closed = client.patch(f"/v1/merchants/{merchant_id}", json={"status": "closed"}, headers=OPERATOR)
    assert closed.status_code == 200
    assert client.get("/v1/nearby", query_string={**params, "q": "osteria"}).get_json()["total"] == 0


@pytest.mark.parametrize("path", ["/v1/nearby", "/v1/merchants"])
@pytest.mark.parametrize(
    ("q", "detail"),
    [
        ("", "1 to 100 characters"),
        ("x" * 101, "at most 100 characters"),
        ("pizza\u0000", "control character"),
        ("pizza\nbar", "control character"),
        ("!!!", "at least one letter or digit"),
        (" ".join(f"w{i}" for i in range(9)), "at most 8 different words"),
    ],
)
def test_a_bad_q_is_a_400_naming_q(path: str, q: str, detail: str, client: FlaskClient) -> None:
    where = {"lat": CENTRE[0], "lon": CENTRE[1]} if path == "/v1/nearby" else {"bbox": "24.9,60.1,25.0,60.2"}
    problem = assert_problem(client.get(path, query_string={**where, "q": q}), 400, "q")
    assert detail in problem["detail"]


def test_a_cursor_of_another_q_is_refused(town: list[Seeded], client: FlaskClient) -> None:
    params = {"lat": CENTRE[0], "lon": CENTRE[1], "radius_m": 2600, "limit": 1}
    for sort in ("relevance", "distance"):
        first = client.get("/v1/nearby", query_string={**params, "q": "piz", "sort": sort}).get_json()
        for other in ({"q": "pizza"}, {}):
            again = {**params, **other, "sort": sort, "cursor": first["next_cursor"]}
            problem = assert_problem(client.get("/v1/nearby", query_string=again), 400, "cursor")
            assert "q," in problem["detail"]
