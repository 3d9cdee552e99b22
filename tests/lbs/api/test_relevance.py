"""sort=relevance through HTTP on both databases: a model trained from the event log by
`lbs train`'s code ranks a user's own places first, with reasons; anonymous users and
new merchants take the cold-start paths; pages hold together."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from lbs.cli import main
from lbs.services import relevance
from lbs.services.events import record_events
from lbs.training import train_from_events
from recommender import artifact
from recommender.synthetic import town
from tests.conftest import OPERATOR
from tests.deals_factory import bearer, create_deal, deal_payload, make_user, transition
from tests.factories import merchant, seed, seed_town
from tests.reviews_support import reviewed, shop

# Visits over the ~60 days before a week ago, so that deals valid at the last visit are
# still valid now (a deal cannot end in the past).
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=75)
RADIUS_M = 3000


def build_world(engine: Engine, client: FlaskClient) -> tuple[dict[int, list[int]], dict[int, str], datetime]:
    """Town merchants and users in the database, their visits in the event log.

    Returns each user's visited merchant ids (in order), their tokens, and the last visit's time."""
    world = town(users=50, visits_per_user=40, start_s=START.timestamp())
    merchant_of = seed_town(engine, world)
    tokens: dict[int, str] = {}
    user_of: dict[int, int] = {}
    for u in np.unique(world.users).tolist():
        user_id, token = make_user(client)
        user_of[u], tokens[user_id] = user_id, token
    visits: dict[int, list[int]] = {}
    events = []
    for u, item, t in zip(world.users.tolist(), world.items.tolist(), world.times.tolist(), strict=True):
        at = datetime.fromtimestamp(t, UTC)
        visits.setdefault(user_of[u], []).append(merchant_of[item])
        events.append(
            {
                "kind": "visit",
                "source": "client",
                "user_id": user_of[u],
                "merchant_id": merchant_of[item],
                "occurred_at": at,
                "received_at": at,
            }
        )
    with Session(engine) as session, session.begin():
        record_events(session, events)
    return visits, tokens, datetime.fromtimestamp(float(world.times[-1]), UTC)


@pytest.fixture
def trained(engine: Engine, make_app: Callable[..., OpenAPI], tmp_path: Path):  # type: ignore[no-untyped-def]
    plain = make_app()
    visits, tokens, last = build_world(engine, plain.test_client())
    with Session(engine) as session:
        model = train_from_events(session, last + timedelta(hours=1), days=365, radius_m=RADIUS_M)
    path = artifact.save(model, tmp_path / "models")
    app = make_app(model_dir=str(tmp_path / "models"), model_reload_s=0.0)
    return app.test_client(), plain.test_client(), visits, tokens, last + timedelta(hours=2), path


def nearby(
    client: FlaskClient, lat: float, lon: float, at: datetime, token: str | None = None, **extra: object
) -> dict:  # type: ignore[type-arg]
    query = {"lat": lat, "lon": lon, "radius_m": RADIUS_M, "limit": 20, "at": at.isoformat(), **extra}
    response = client.get("/v1/nearby", query_string=query, headers=bearer(token) if token else {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_a_user_with_history_gets_their_places_first_with_reasons(trained) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, path = trained
    user_id = max(visits, key=lambda u: Counter(visits[u]).most_common(1)[0][1])
    favourite, count = Counter(visits[user_id]).most_common(1)[0]
    spot = client.get(f"/v1/merchants/{favourite}").get_json()
    page = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id])
    assert page["ranking"] == "relevance" and page["model"] in path.name
    top = [item["merchant"]["id"] for item in page["items"][:3]]
    assert favourite in top
    item = next(i for i in page["items"] if i["merchant"]["id"] == favourite)
    codes = {r["code"]: r for r in item["reasons"]}
    assert codes["visited"]["visits"] == count
    assert codes["visited"]["text"].startswith("you've been here")
    for result in page["items"]:
        assert result["reasons"][-1]["code"] == "distance"
        assert all(isinstance(r["text"], str) and r["text"] for r in result["reasons"])


def test_geojson_pages_carry_the_same_reasons_at_and_model(trained) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, _ = trained
    user_id = next(iter(visits))
    spot = client.get(f"/v1/merchants/{visits[user_id][0]}").get_json()
    page = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id])
    collection = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id], format="geojson")

    assert collection["type"] == "FeatureCollection"
    assert (collection["at"], collection["model"], collection["ranking"]) == (
        page["at"],
        page["model"],
        "relevance",
    )
    assert [f["properties"]["reasons"] for f in collection["features"]] == [
        i["reasons"] for i in page["items"]
    ]
    # Lean: only the reasons (and the id) of each place.
    lean = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id], format="geojson", fields="reasons")
    assert [f["properties"] for f in lean["features"]] == [
        {"id": i["merchant"]["id"], "reasons": i["reasons"]} for i in page["items"]
    ]


def test_relevance_differs_from_distance_for_a_user_with_history(trained) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, _ = trained
    user_id = next(iter(visits))
    spot = client.get(f"/v1/merchants/{visits[user_id][-1]}").get_json()
    ranked = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id])
    by_distance = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id], sort="distance")
    assert by_distance["ranking"] == "distance" and "reasons" not in by_distance["items"][0]
    assert [i["merchant"]["id"] for i in ranked["items"]] != [
        i["merchant"]["id"] for i in by_distance["items"]
    ]
    assert ranked["total"] == by_distance["total"]


def test_anonymous_requests_get_a_non_personal_ranking(trained) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, _, at, _ = trained
    spot = client.get(f"/v1/merchants/{next(iter(visits.values()))[0]}").get_json()
    page = nearby(client, spot["lat"], spot["lon"], at)
    assert page["ranking"] == "relevance"
    codes = {r["code"] for item in page["items"] for r in item["reasons"]}
    assert not codes & {"visited", "category_habit"}
    assert "popular" in codes


def test_relevance_with_no_merchants_in_range_is_an_empty_page(trained) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, _ = trained
    page = nearby(client, 10.0, 10.0, at, tokens[next(iter(visits))])
    assert page["ranking"] == "relevance" and page["total"] == 0
    assert page["items"] == [] and page["next_cursor"] is None


def test_without_a_model_relevance_is_distance(trained) -> None:  # type: ignore[no-untyped-def]
    _, plain, visits, tokens, at, _ = trained
    user_id = next(iter(visits))
    spot = plain.get(f"/v1/merchants/{visits[user_id][0]}").get_json()
    page = nearby(plain, spot["lat"], spot["lon"], at, tokens[user_id])
    assert page["ranking"] == "distance" and "model" not in page
    distances = [i["distance_m"] for i in page["items"]]
    assert distances == sorted(distances)


def test_relevance_pages_cover_every_merchant_once(trained) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, _ = trained
    user_id = next(iter(visits))
    spot = client.get(f"/v1/merchants/{visits[user_id][0]}").get_json()
    seen: list[int] = []
    page = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id])
    total = page["total"]
    while True:
        seen += [i["merchant"]["id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        page = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id], cursor=page["next_cursor"])
    assert len(seen) == len(set(seen)) == total


def test_a_merchant_without_history_gets_an_exploration_slot(trained, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, _ = trained
    user_id = next(iter(visits))
    spot = client.get(f"/v1/merchants/{visits[user_id][0]}").get_json()
    (fresh,) = seed(engine, [merchant("Brand new", spot["lat"] + 0.002, spot["lon"])])
    never_visited = {fresh.id} | {
        m["merchant"]["id"] for m in nearby(client, spot["lat"], spot["lon"], at, limit=100)["items"]
    } - {m for ms in visits.values() for m in ms}
    page = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id], limit=100)
    new = [i for i, item in enumerate(page["items"]) if "new" in {r["code"] for r in item["reasons"]}]
    assert {page["items"][i]["merchant"]["id"] for i in new} == never_visited
    # The 6th, 16th, ... places go to them, as long as any is left.
    assert new[: len(never_visited)][:3] == [5, 15, 25][: len(never_visited)]


def test_a_live_deal_lifts_its_merchant_and_says_so(trained, make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, _ = trained
    user_id = next(iter(visits))
    spot = client.get(f"/v1/merchants/{visits[user_id][0]}").get_json()
    before = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id])
    target = before["items"][-1]["merchant"]["id"]  # ranked last on the first page
    issued = client.post(f"/v1/merchants/{target}/api-keys", headers=OPERATOR)
    key = issued.get_json()["api_key"]
    body = deal_payload(at, kind="percent_off", list_price_minor=1000, deal_price_minor=600)
    deal = create_deal(
        client,
        key,
        **{k: body[k] for k in ("kind", "list_price_minor", "deal_price_minor", "valid_from", "valid_until")},
    )
    transition(client, key, deal["id"], "publish")

    page = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id])
    item = next(i for i in page["items"] if i["merchant"]["id"] == target)
    (reason,) = [r for r in item["reasons"] if r["code"] == "deal"]
    assert reason["deal_id"] == deal["id"] and reason["discount_pct"] == 40
    assert reason["text"].startswith("\N{MINUS SIGN}40 % until ")
    ids = [i["merchant"]["id"] for i in page["items"]]
    assert ids.index(target) <= len(before["items"]) - 1

    heavy = make_app(model_dir=str(tmp_path / "models"), model_reload_s=0.0, rank_deal_weight=100.0)
    first = nearby(heavy.test_client(), spot["lat"], spot["lon"], at, tokens[user_id])["items"][0]
    assert first["merchant"]["id"] == target


def test_lbs_train_writes_a_model_from_the_event_log_and_prints_metrics(
    engine: Engine, database_url: str, make_app: Callable[..., OpenAPI], tmp_path: Path
) -> None:
    env = {"LBS_DATABASE_URL": database_url, "LBS_MODEL_DIR": str(tmp_path / "models")}
    refused = CliRunner().invoke(main, ["train"], env=env)
    assert refused.exit_code == 1 and "not trained" in refused.output
    assert artifact.current(tmp_path / "models") is None

    client = make_app().test_client()
    _, tokens, _ = build_world(engine, client)
    # One of the town's people redeems a deal at a shop of its own and reviews it: 5 stars.
    shop_id, key, deal_id = shop(client)
    reviewed(client, key, next(iter(tokens.values())), deal_id, 5)
    result = CliRunner().invoke(main, ["train", "--radius-m", str(RADIUS_M)], env=env)
    assert result.exit_code == 0, result.output
    assert "held-out NDCG@10" in result.output and "1 reviews, " in result.output
    # Each step's time once it ends, the saving last: no bar that ends before the work does.
    steps = [line.strip().rsplit(": ", 1)[0] for line in result.output.splitlines() if line.startswith("  ")]
    assert steps[0] == "read the events, the merchants and the reviews" and steps[-1] == "save the model"
    assert steps[-2].startswith("ranker on ") and len(set(steps)) == len(steps) and "%" not in result.output
    written = artifact.current(tmp_path / "models")
    assert written is not None and str(written) in result.output
    meta = artifact.load(written).meta
    # The claim and the redemption are interactions too (the redemption a visit).
    assert meta["users"] == 50 and meta["interactions"] == 50 * 40 + 2 and meta["radius_m"] == RADIUS_M
    # The shop's rating: its one review, ten more at the mean of all (which is its own).
    model = artifact.load(written)
    (column,) = model.columns([shop_id])
    assert meta["reviews"] == 1 and model.signals.ratings.count[column] == 1
    assert model.signals.ratings.average[column] == pytest.approx(5.0)
    assert (
        meta["metrics"]["held_out"]["all"]["ndcg@10"] > meta["metrics"]["held_out_distance"]["all"]["ndcg@10"]
    )


def test_beyond_the_re_ranked_head_results_follow_by_distance(
    trained, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, _ = trained
    monkeypatch.setattr(relevance, "RERANK_CANDIDATES", 10)
    user_id = next(iter(visits))
    spot = client.get(f"/v1/merchants/{visits[user_id][0]}").get_json()
    items: list[dict] = []  # type: ignore[type-arg]
    page = nearby(client, spot["lat"], spot["lon"], at, tokens[user_id], limit=7)
    while True:
        items += page["items"]
        if page["next_cursor"] is None:
            break
        page = nearby(
            client, spot["lat"], spot["lon"], at, tokens[user_id], limit=7, cursor=page["next_cursor"]
        )
    ids = [i["merchant"]["id"] for i in items]
    assert len(ids) == len(set(ids)) == page["total"]
    head, tail = items[:10], items[10:]
    assert max(i["distance_m"] for i in head) <= min(i["distance_m"] for i in tail)
    assert [i["distance_m"] for i in tail] == sorted(i["distance_m"] for i in tail)
    assert all([r["code"] for r in i["reasons"]] == ["distance"] for i in tail)


def every_page(client: FlaskClient, spot: dict, at: datetime, token: str, **extra: object) -> list[dict]:  # type: ignore[type-arg]
    """Every page of a relevance query, following next_cursor."""
    pages = [nearby(client, spot["lat"], spot["lon"], at, token, limit=100, **extra)]
    while pages[-1]["next_cursor"] is not None:
        cursor = pages[-1]["next_cursor"]
        pages.append(nearby(client, spot["lat"], spot["lon"], at, token, limit=100, cursor=cursor, **extra))
    return pages


def test_open_now_ranks_only_the_open_merchants(trained) -> None:  # type: ignore[no-untyped-def]
    client, _, visits, tokens, at, _ = trained
    user_id = next(iter(visits))
    spot = client.get(f"/v1/merchants/{visits[user_id][0]}").get_json()
    ids = [i["merchant"]["id"] for p in every_page(client, spot, at, tokens[user_id]) for i in p["items"]]
    closed = set(ids[::3])
    for merchant_id in ids:
        hours = "off" if merchant_id in closed else "24/7"
        patched = client.patch(
            f"/v1/merchants/{merchant_id}", json={"opening_hours": hours}, headers=OPERATOR
        )
        assert patched.status_code == 200

    pages = every_page(client, spot, at, tokens[user_id], open_now="true")

    items = [i for p in pages for i in p["items"]]
    assert {p["ranking"] for p in pages} == {"relevance"}
    assert {p["total"] for p in pages} == {len(ids) - len(closed)}
    assert sorted(i["merchant"]["id"] for i in items) == sorted(set(ids) - closed)  # each open one once
    assert all(i["open_now"] and i["reasons"] for i in items)
