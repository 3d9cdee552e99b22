"""GET /v1/merchant/insights through HTTP on both databases: a small scenario counted by hand."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import h3
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from lbs.cli import main
from tests.deals_factory import bearer, claim, create_deal, make_merchant, make_user
from tests.problems import assert_problem
from tests.reviews_support import post_review

HELSINKI = ZoneInfo("Europe/Helsinki")
P1 = (60.1699, 24.9384)  # the centre
P2 = (60.2055, 24.6559)  # Espoo: another res-7 cell


def area(position: tuple[float, float]) -> str:
    return str(h3.cell_to_parent(h3.latlng_to_cell(*position, 9), 7))


def send(client: FlaskClient, token: str, events: list[dict[str, Any]]) -> None:
    response = client.post("/v1/events", json={"events": events}, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)


_ids = iter(range(1, 10**6))


def event(
    kind: str,
    merchant: int,
    deal: int,
    at: datetime,
    surface: str,
    at_position: tuple[float, float] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"e{next(_ids)}",
        "kind": kind,
        "merchant_id": merchant,
        "deal_id": deal,
        "occurred_at": at.isoformat(),
        "surface": surface,
    }
    if at_position is not None:
        body["lat"], body["lon"] = at_position
    return body


@dataclass
class Scenario:
    merchant: int
    key: str
    d1: int
    d2: int
    day_a: str  # u1-u6 see d1 on nearby at P1 at hour_a (twice)
    day_b: str  # u1-u3, u7, u8 see d1 on the map at hour_b; u1-u5 click it; u4 sees d2 at P2 at hour_c
    hour_a: str
    hour_b: str
    hour_c: str
    claim_hours: set[str]  # u1-u5 claim d1 now, and the merchant redeems them; u1, u2 review
    today: str


@pytest.fixture
def scenario(client: FlaskClient) -> Scenario:
    merchant, key = make_merchant(client, *P1)
    d1 = create_deal(client, key, publish=True, title="Ramen", list_price_minor=1500, deal_price_minor=900)[
        "id"
    ]
    d2 = create_deal(client, key, publish=True, title="Gyoza", list_price_minor=1000, deal_price_minor=600)[
        "id"
    ]
    now = datetime.now(UTC).astimezone(HELSINKI)
    near_now = {(now.hour + d) % 24 for d in (-1, 0, 1, 2)}  # the claims' hour, whatever the clock
    hour_a, hour_b, hour_c = [h for h in (10, 18, 20, 3, 5, 7) if h not in near_now][:3]

    def at(days_ago: int, hour: int, minute: int = 5) -> datetime:
        day = now.date() - timedelta(days=days_ago)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HELSINKI)

    users = [make_user(client)[1] for _ in range(8)]
    for i, token in enumerate(users, start=1):
        mine = []
        if i <= 6:
            mine += [
                event("impression", merchant, d1, at(3, hour_a), "nearby", P1),
                event("impression", merchant, d1, at(3, hour_a, 35), "nearby", P1),
            ]
        if i in (1, 2, 3, 7, 8):
            mine.append(event("impression", merchant, d1, at(2, hour_b), "map"))
        if i <= 5:
            mine.append(event("click", merchant, d1, at(2, hour_b, 10), "deal_page"))
        if i == 4:
            mine.append(event("impression", merchant, d2, at(2, hour_c), "nearby", P2))
        send(client, token, mine)
    moments = []
    for i, token in enumerate(users[:5]):
        voucher = claim(client, token, d1, f"claim-{i}")
        done = client.post(
            "/v1/merchant/vouchers/redeem", json={"code": voucher["code"]}, headers=bearer(key)
        )
        assert done.status_code == 200, done.get_data(as_text=True)
        moments += [voucher["claimed_at"], done.get_json()["redeemed_at"]]
        if i < 2:  # u1 and u2 review what they redeemed
            review = post_review(client, token, voucher["id"], 5 - i)
            assert review.status_code == 201, review.get_data(as_text=True)
            moments.append(review.get_json()["created_at"])
    local = [datetime.fromisoformat(m).astimezone(HELSINKI) for m in moments]
    return Scenario(
        merchant,
        key,
        d1,
        d2,
        at(3, 0).date().isoformat(),
        at(2, 0).date().isoformat(),
        str(hour_a),
        str(hour_b),
        str(hour_c),
        {str(t.hour) for t in local},
        local[0].date().isoformat(),
    )


def insights(client: FlaskClient, key: str, **query: Any) -> dict[str, Any]:
    response = client.get("/v1/merchant/insights", query_string=query, headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


HIDDEN = {
    "suppressed": True,
    "users": None,
    "impressions": None,
    "clicks": None,
    "claims": None,
    "redemptions": None,
    "reviews": None,
    "conversion": {"click_through": None, "claim_rate": None, "redemption_rate": None},
    "revenue_minor": None,
    "discount_minor": None,
    "roi": None,
}


def shown(
    users: int,
    impressions: int,
    clicks: int,
    claims: int,
    redemptions: int,
    reviews: int | None = 0,
    money: bool = True,
) -> dict[str, Any]:
    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    revenue, discount = 900 * redemptions, 600 * redemptions
    return {
        "suppressed": False,
        "users": users,
        "impressions": impressions,
        "clicks": clicks,
        "claims": claims,
        "redemptions": redemptions,
        "reviews": reviews,
        "conversion": {
            "click_through": ratio(clicks, impressions),
            "claim_rate": ratio(claims, clicks),
            "redemption_rate": ratio(redemptions, claims),
        },
        "revenue_minor": revenue if money else None,
        "discount_minor": discount if money else None,
        "roi": ratio(revenue - discount, discount) if money else None,
    }


def by_key(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The buckets by key, each without it (to compare with shown())."""
    return {b["key"]: {k: v for k, v in b.items() if k != "key"} for b in body["buckets"]}


def local_day(at: datetime) -> str:
    return at.astimezone(HELSINKI).date().isoformat()


def test_the_funnel_in_total_per_deal_and_by_day(client: FlaskClient, scenario: Scenario) -> None:
    s = scenario
    first = (date.fromisoformat(s.day_a) - timedelta(days=1)).isoformat()
    body = insights(client, s.key, **{"from": first, "by": "day"})

    # u1-u8; impressions are user-days: u1-u6 on day A (twice each), u1-u3, u7, u8 and u4 on B.
    assert body["total"] == shown(users=8, impressions=12, clicks=5, claims=5, redemptions=5, reviews=2)
    assert (body["from"], body["to"], body["timezone"], body["k"], body["currency"]) == (
        first,
        s.today,
        "Europe/Helsinki",
        5,
        "EUR",
    )
    # Gyoza was seen by u4 alone: hidden; then Ramen would be the total minus u4's one
    # impression, so it is hidden too.
    assert [(d["deal_id"], d["title"], d["currency"], d["suppressed"]) for d in body["deals"]] == [
        (s.d1, "Ramen", "EUR", True),
        (s.d2, "Gyoza", "EUR", True),
    ]
    span = (date.fromisoformat(s.today) - date.fromisoformat(first)).days + 1
    every_day = [(date.fromisoformat(first) + timedelta(days=i)).isoformat() for i in range(span)]
    assert [b["key"] for b in body["buckets"]] == every_day
    days = by_key(body)
    assert days[first] == shown(0, 0, 0, 0, 0)
    assert days[s.day_a] == shown(users=6, impressions=6, clicks=0, claims=0, redemptions=0)
    assert days[s.day_b] == shown(users=7, impressions=6, clicks=5, claims=0, redemptions=0)
    assert days[s.today] == shown(users=5, impressions=0, clicks=0, claims=5, redemptions=5, reviews=2)


def test_one_deal(client: FlaskClient, scenario: Scenario) -> None:
    s = scenario
    body = insights(client, s.key, deal_id=s.d1, by="weekday")
    ramen = shown(users=8, impressions=11, clicks=5, claims=5, redemptions=5, reviews=2)
    assert body["total"] == ramen
    assert body["deals"] == [{"deal_id": s.d1, "title": "Ramen", "currency": "EUR", **ramen}]
    weekdays = by_key(body)
    assert list(weekdays) == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    day_a = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[date.fromisoformat(s.day_a).weekday()]
    assert weekdays[day_a] == shown(users=6, impressions=6, clicks=0, claims=0, redemptions=0)


def test_by_hour(client: FlaskClient, scenario: Scenario) -> None:
    s = scenario
    hours = by_key(insights(client, s.key, by="hour"))
    assert list(hours) == [str(h) for h in range(24)]
    assert hours[s.hour_a] == shown(users=6, impressions=6, clicks=0, claims=0, redemptions=0, reviews=None)
    assert hours[s.hour_b] == shown(users=7, impressions=5, clicks=5, claims=0, redemptions=0, reviews=None)
    # u4 alone at hour C: hidden, and with it the smallest visible hour, the claims' (u1-u5).
    assert hours[s.hour_c] == HIDDEN
    assert all(hours[h] == HIDDEN for h in s.claim_hours)
    assert sum(b["suppressed"] for b in hours.values()) == 1 + len(s.claim_hours)


def test_by_area(client: FlaskClient, scenario: Scenario) -> None:
    s = scenario
    areas = by_key(insights(client, s.key, by="area"))
    assert list(areas) == [*sorted([area(P1), area(P2)]), "unknown"]
    # Impressions where they were seen; clicks and claims where their users last saw the
    # deal from a known place (the map's impressions have none).
    assert areas[area(P1)] == shown(users=6, impressions=6, clicks=5, claims=5, redemptions=5, reviews=None)
    # u4 alone at P2; then the smallest visible: the map's five users, of no known place.
    assert areas[area(P2)] == HIDDEN and areas["unknown"] == HIDDEN


def test_by_source(client: FlaskClient, scenario: Scenario) -> None:
    s = scenario
    sources = by_key(insights(client, s.key, by="source"))
    assert list(sources) == ["nearby", "map", "deal_page"]
    assert sources["nearby"] == shown(users=6, impressions=7, clicks=0, claims=0, redemptions=0, reviews=None)
    assert sources["map"] == shown(users=5, impressions=5, clicks=0, claims=0, redemptions=0, reviews=None)
    # The claims' last touch was the click on the deal's page; the redemptions follow them.
    assert sources["deal_page"] == shown(
        users=5, impressions=0, clicks=5, claims=5, redemptions=5, reviews=None
    )


def test_csv_has_the_numbers_of_the_json(client: FlaskClient, scenario: Scenario) -> None:
    s = scenario
    for by in ("day", "source"):
        body = insights(client, s.key, by=by)
        response = client.get("/v1/merchant/insights.csv", query_string={"by": by}, headers=bearer(s.key))
        assert response.status_code == 200 and response.mimetype == "text/csv"
        lines = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        groups = [
            ("total", body["total"]),
            *(("deal", d) for d in body["deals"]),
            *(("bucket", b) for b in body["buckets"]),
        ]
        assert len(lines) == len(groups)
        for line, (kind, group) in zip(lines, groups, strict=True):
            assert line["row"] == kind
            flat = {**group, **group["conversion"]}
            for column in (
                "users",
                "impressions",
                "clicks",
                "claims",
                "redemptions",
                "revenue_minor",
                "roi",
                "click_through",
            ):
                value = flat[column]
                assert line[column] == ("" if value is None else str(value)), (kind, column)
            assert line["suppressed"] == str(group["suppressed"]).lower()
            assert line["key"] == group.get("key", "") and line["deal_id"] == str(group.get("deal_id", ""))


def test_the_rollup_answers_what_the_events_do(client: FlaskClient, scenario: Scenario) -> None:
    """Before a refresh, the read counts every event itself; after, from the rollup."""
    s = scenario

    def funnel(by: str) -> dict[str, Any]:
        body = insights(client, s.key, by=by)
        del body["uplift"]  # rates per week of a deal still running: they move with the clock
        return body

    before = {by: funnel(by) for by in ("day", "hour", "area", "source")}
    runner = CliRunner()
    env = {"LBS_DATABASE_URL": client.application.extensions["lbs"].settings.database_url}
    for _ in range(2):  # the first sees the newest id, the second (settled at once) rolls up to it
        done = runner.invoke(main, ["insights", "refresh", "--settle-s", "0"], env=env)
        assert done.exit_code == 0, done.output
    assert "rolled up to" in done.output and not done.output.startswith("0 events")
    for by, body in before.items():
        assert funnel(by) == body, by


def test_a_local_day_ends_at_local_midnight(client: FlaskClient) -> None:
    merchant, key = make_merchant(client, *P1)
    deal = create_deal(client, key, publish=True)["id"]
    day = (datetime.now(UTC).astimezone(HELSINKI) - timedelta(days=3)).date()
    late = datetime(day.year, day.month, day.day, 23, 59, tzinfo=HELSINKI)
    early = late + timedelta(minutes=2)  # 00:01 the next local day: still `day` in UTC
    assert early.astimezone(UTC).date() == day
    for _ in range(5):
        send(client, make_user(client)[1], [event("impression", merchant, deal, late, "nearby", P1)])
    for _ in range(6):
        send(client, make_user(client)[1], [event("impression", merchant, deal, early, "nearby", P1)])
    body = insights(client, key, **{"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()})
    assert [(b["key"], b["users"]) for b in body["buckets"]] == [
        (day.isoformat(), 5),
        ((day + timedelta(days=1)).isoformat(), 6),
    ]
    hours = {
        b["key"]: b["users"] for b in insights(client, key, by="hour", **{"from": day.isoformat()})["buckets"]
    }
    assert (hours["23"], hours["0"]) == (5, 6)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "1999-01-01"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),
        ({"by": "week"}, "by"),
        ({"deal_id": "0"}, "deal_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_queries_are_400_naming_the_field(client: FlaskClient, query: dict[str, str], field: str) -> None:
    _, key = make_merchant(client)
    response = client.get("/v1/merchant/insights", query_string=query, headers=bearer(key))
    assert_problem(response, 400)
    assert field in response.get_data(as_text=True)


def test_another_merchants_deal_is_404(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    _, other_key = make_merchant(client)
    theirs = create_deal(client, other_key, publish=True)["id"]
    for path in ("/v1/merchant/insights", "/v1/merchant/insights.csv"):
        assert_problem(client.get(path, query_string={"deal_id": theirs}, headers=bearer(key)), 404)


def test_366_days_are_allowed_and_the_default_is_28(client: FlaskClient) -> None:
    _, key = make_merchant(client)
    body = insights(client, key, **{"from": "2025-01-01", "to": "2026-01-01"})
    assert len(body["buckets"]) == 366
    body = insights(client, key)
    assert len(body["buckets"]) == 28 and body["to"] == local_day(datetime.now(UTC))
    assert body["total"] == shown(0, 0, 0, 0, 0, money=False)  # no deals, no currency


def test_uplift_counts_visits_in_the_deals_hours_before_and_during(client: FlaskClient) -> None:
    merchant, key = make_merchant(client, *P1)
    now = datetime.now(UTC)
    evenings = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "18:00", "end": "22:00"}]
    deal = create_deal(
        client, key, publish=True, valid_from=(now - timedelta(days=14)).isoformat(), windows=evenings
    )
    local = now.astimezone(HELSINKI)

    def evening(days_ago: int, hour: int = 19) -> datetime:
        day = local.date() - timedelta(days=days_ago)
        return datetime(day.year, day.month, day.day, hour, 30, tzinfo=HELSINKI)

    def visit(at: datetime) -> dict[str, Any]:
        return {
            "id": f"v{next(_ids)}",
            "kind": "visit",
            "merchant_id": merchant,
            "occurred_at": at.isoformat(),
        }

    for _ in range(5):  # during the deal, in its hours
        send(client, make_user(client)[1], [visit(evening(3))])
    for _ in range(6):  # before it, in the same hours; and one at noon, outside them
        send(client, make_user(client)[1], [visit(evening(20)), visit(evening(20, hour=12))])

    assert insights(client, key)["uplift"] == []  # only when asked
    (entry,) = insights(client, key, deal_id=deal["id"], uplift="true")["uplift"]
    assert (entry["deal_id"], entry["observational"], entry["suppressed"]) == (deal["id"], True, False)
    weeks, before_weeks = entry["weeks_during"], entry["weeks_before"]
    assert weeks == pytest.approx(2.0, abs=0.01) and before_weeks == 3  # 2 weeks and a moment: rounded up
    assert (entry["during"]["visits"], entry["before"]["visits"]) == (5, 6)
    assert entry["during"]["visits_per_week"] == pytest.approx(5 / 2, rel=1e-3)
    assert entry["before"]["visits_per_week"] == pytest.approx(6 / 3)
    assert entry["difference"]["visits_per_week"] == pytest.approx(5 / 2 - 6 / 3, rel=1e-3)
    assert entry["during"]["redemptions"] == entry["before"]["redemptions"] == 0
