"""Who may call which endpoint, for the endpoints test_o2o_authz.py leaves out (merchants,
keys, users, maps, operations, reviews): every endpoint x every kind of caller, the exact status,
and nothing written by a refused call. The last test checks that the three matrices (this,
test_o2o_authz.py's and tests/lbs/payments/test_payments_authz.py's) together hold every
route the app serves, so a new endpoint cannot go untested."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, text

from tests.conftest import OPERATOR
from tests.deals_factory import bearer, create_deal, make_merchant, make_user
from tests.lbs.api import test_o2o_authz
from tests.lbs.payments import test_payments_authz
from tests.problems import assert_problem
from tests.reviews_support import post_review, redeemed

CALLERS = [
    "anonymous", "malformed", "bad-user-token", "bad-merchant-key", "revoked-key",
    "owner", "other-user", "A", "B", "operator",
]  # fmt: skip


@dataclass(frozen=True)
class World:
    merchant_a: int
    deal_a: int
    spare_key_a: int  # a second key of A's, for revoking
    transfer_code: str  # the other user's
    headers: dict[str, dict[str, str]]
    voucher: int = 0  # the owner's, redeemed at A, not reviewed yet
    review: int = 0  # the owner's review of A


@pytest.fixture
def world(client: FlaskClient) -> World:
    merchant_a, key_a = make_merchant(client, name="Kahvila A", category="cafe")
    _, key_b = make_merchant(client, name="Kahvila B", category="cafe")
    deal_a = create_deal(client, key_a, publish=True)["id"]
    spare = client.post(f"/v1/merchants/{merchant_a}/api-keys", headers=OPERATOR).get_json()
    revoked = client.post(f"/v1/merchants/{merchant_a}/api-keys", headers=OPERATOR).get_json()
    gone = client.delete(f"/v1/merchants/{merchant_a}/api-keys/{revoked['key_id']}", headers=OPERATOR)
    assert gone.status_code == 204
    owner, other = make_user(client)[1], make_user(client)[1]
    code = client.post("/v1/me/transfer-code", headers=bearer(other)).get_json()["code"]
    deal_r = create_deal(client, key_a, publish=True, per_user_limit=5)["id"]
    reviewed_voucher, voucher = redeemed(client, key_a, owner, deal_r), redeemed(client, key_a, owner, deal_r)
    review = post_review(client, owner, reviewed_voucher, 4).get_json()["id"]
    headers = {
        "anonymous": {},
        "malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
        "bad-user-token": bearer("lbs_ut_" + "x" * 43),
        "bad-merchant-key": bearer("lbs_mk_" + "x" * 43),
        "revoked-key": bearer(revoked["api_key"]),
        "owner": bearer(owner),
        "other-user": bearer(other),
        "A": bearer(key_a),
        "B": bearer(key_b),
        "operator": OPERATOR,
    }
    return World(merchant_a, deal_a, spare["key_id"], code, headers, voucher, review)


Request = tuple[str, str, dict[str, Any] | None]
CHART = "/v1/merchant/insights/chart.svg"
NEW_MERCHANT = {"name": "New", "category": "bar", "lat": 60.17, "lon": 24.94}
ENDPOINTS: dict[str, Callable[[World], Request]] = {
    "home": lambda w: ("GET", "/", None),
    "map": lambda w: ("GET", "/map", None),
    "merchant-page": lambda w: ("GET", "/merchant", None),
    "widget": lambda w: ("GET", "/widget.js", None),
    "healthz": lambda w: ("GET", "/healthz", None),
    "readyz": lambda w: ("GET", "/readyz", None),
    "openapi": lambda w: ("GET", "/openapi.json", None),
    "metrics": lambda w: ("GET", "/metrics", None),
    "nearby": lambda w: ("GET", "/v1/nearby?lat=60.17&lon=24.94", None),
    "bbox": lambda w: ("GET", "/v1/merchants?bbox=24.9,60.1,25.0,60.2", None),
    "tile": lambda w: ("GET", "/v1/tiles/14/9326/4739.mvt", None),
    "merchant": lambda w: ("GET", f"/v1/merchants/{w.merchant_a}", None),
    "merchant-deals": lambda w: ("GET", f"/v1/merchants/{w.merchant_a}/deals", None),
    "deal": lambda w: ("GET", f"/v1/deals/{w.deal_a}", None),
    "insights": lambda w: ("GET", "/v1/merchant/insights?by=hour", None),
    "insights-of-a-deal": lambda w: ("GET", f"/v1/merchant/insights?deal_id={w.deal_a}&uplift=true", None),
    "insights-csv": lambda w: ("GET", f"/v1/merchant/insights.csv?deal_id={w.deal_a}", None),
    "insights-chart": lambda w: ("GET", f"{CHART}?kind=funnel&deal_id={w.deal_a}", None),
    "create-merchant": lambda w: ("POST", "/v1/merchants", NEW_MERCHANT),
    "patch-merchant": lambda w: ("PATCH", f"/v1/merchants/{w.merchant_a}", {"phone": "+358 9 123"}),
    "merchant-me": lambda w: ("GET", "/v1/merchants/me", None),
    "issue-key": lambda w: ("POST", f"/v1/merchants/{w.merchant_a}/api-keys", None),
    "list-keys": lambda w: ("GET", f"/v1/merchants/{w.merchant_a}/api-keys", None),
    "revoke-key": lambda w: ("DELETE", f"/v1/merchants/{w.merchant_a}/api-keys/{w.spare_key_a}", None),
    "rotate-key": lambda w: ("POST", "/v1/merchant/api-keys/rotate", {"grace_hours": 1}),
    "merchant-feed": lambda w: ("GET", "/v1/merchant/events", None),
    "new-user": lambda w: ("POST", "/v1/users", None),
    "transfer": lambda w: ("POST", "/v1/users/transfer", {"code": w.transfer_code}),
    "rotate-token": lambda w: ("POST", "/v1/me/token", None),
    "transfer-code": lambda w: ("POST", "/v1/me/transfer-code", None),
    "write-review": lambda w: ("POST", "/v1/me/reviews", {"voucher_id": w.voucher, "rating": 5, "text": "!"}),
    "edit-review": lambda w: ("PATCH", f"/v1/me/reviews/{w.review}", {"rating": 2}),
    "my-reviews": lambda w: ("GET", "/v1/me/reviews", None),
    "report-harassment": lambda w: (
        "POST", "/v1/me/harassment-reports", {"merchant_id": w.merchant_a, "text": "Calls me"}
    ),
    "merchant-reviews": lambda w: ("GET", f"/v1/merchants/{w.merchant_a}/reviews", None),
    "report-review": lambda w: ("POST", f"/v1/reviews/{w.review}/reports", {"reason": "spam"}),
    "reply": lambda w: ("POST", f"/v1/merchant/reviews/{w.review}/reply", {"text": "Thanks"}),
    "review-reports": lambda w: ("GET", "/v1/reports/reviews", None),
    "harassment-reports": lambda w: ("GET", "/v1/reports/harassment", None),
}  # fmt: skip

EVERYONE = dict.fromkeys(CALLERS, 200)
# A public read that takes an optional user token: an unknown one is still a 401.
PUBLIC_WITH_USER = {**EVERYONE, "bad-user-token": 401}
MERCHANTS = {"A": 200, "B": 200}  # the caller's own record or collection
A_OR_OPERATOR = {"A": 200, "B": 403, "operator": 200}
USERS = {"owner": 201, "other-user": 201}
# Operator endpoints: a working merchant key is valid but not allowed here.
OPERATOR_ONLY = {"A": 403, "B": 403}
EXPECTED: dict[str, dict[str, int]] = {
    "home": EVERYONE,
    "map": EVERYONE,
    "merchant-page": EVERYONE,  # the same page for all; its script reads with the pasted key
    "widget": EVERYONE,
    "healthz": EVERYONE,
    "readyz": EVERYONE,
    "openapi": EVERYONE,
    "metrics": {**OPERATOR_ONLY, "operator": 200},
    "nearby": PUBLIC_WITH_USER,
    "bbox": PUBLIC_WITH_USER,
    "tile": EVERYONE,
    "merchant": PUBLIC_WITH_USER,
    "merchant-deals": EVERYONE,
    "deal": PUBLIC_WITH_USER,
    "create-merchant": {**OPERATOR_ONLY, "operator": 201},
    "patch-merchant": A_OR_OPERATOR,
    "merchant-me": MERCHANTS,
    "issue-key": {**OPERATOR_ONLY, "operator": 201},
    "list-keys": A_OR_OPERATOR,
    "revoke-key": {"A": 204, "B": 403, "operator": 204},
    "rotate-key": {"A": 201, "B": 201},
    "merchant-feed": MERCHANTS,
    "insights": MERCHANTS,
    # A's deal: B's key finds no such deal of B's (404), never A's numbers.
    "insights-of-a-deal": {"A": 200, "B": 404},
    "insights-csv": {"A": 200, "B": 404},
    "insights-chart": {"A": 200, "B": 404},
    "new-user": dict.fromkeys(CALLERS, 201),  # anyone; credentials play no part
    "transfer": dict.fromkeys(CALLERS, 200),  # anyone holding the code
    "rotate-token": USERS,
    "transfer-code": USERS,
    # Only the holder of the redeemed voucher; to another user it is not theirs (403), and
    # the review as if it did not exist (404).
    "write-review": {"owner": 201, "other-user": 403},
    "edit-review": {"owner": 200, "other-user": 404},
    "my-reviews": {"owner": 200, "other-user": 200},
    "report-harassment": USERS,
    "merchant-reviews": EVERYONE,
    # Anyone, anonymous included (other credentials count as none); an unknown user token is a 401.
    "report-review": {**dict.fromkeys(CALLERS, 201), "bad-user-token": 401},
    "reply": {"A": 200, "B": 403},
    "review-reports": {**OPERATOR_ONLY, "operator": 200},
    "harassment-reports": {**OPERATOR_ONLY, "operator": 200},
}
# Everyone not listed is a 401: no credentials or unknown ones, a revoked key, a user token
# where a merchant is needed, a merchant key where a user is, the operator's token on a
# merchant's own endpoints (it is no merchant's key).
CASES = [
    pytest.param(endpoint, caller, EXPECTED[endpoint].get(caller, 401), id=f"{endpoint}-{caller}")
    for endpoint in ENDPOINTS
    for caller in CALLERS
]


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(rate_limit_new_users="100000/minute")


def _snapshot(engine: Engine) -> tuple[Any, ...]:
    """Every row the endpoints above could write or change."""
    with engine.connect() as c:
        return (
            c.execute(text("SELECT id, name, phone, status FROM merchants ORDER BY id")).all(),
            c.execute(text("SELECT id, revoked_at FROM merchant_api_keys ORDER BY id")).all(),
            c.execute(text("SELECT id, token_sha256, transfer_code_sha256 FROM users ORDER BY id")).all(),
            c.execute(text("SELECT count(*) FROM events")).scalar_one(),
            sorted(c.execute(text("SELECT id, rating, text, reply_text, report_count FROM reviews"))),
            c.execute(text("SELECT * FROM merchant_ratings ORDER BY merchant_id")).all(),
            c.execute(text("SELECT count(*) FROM review_reports")).scalar_one(),
            c.execute(text("SELECT count(*) FROM harassment_reports")).scalar_one(),
        )


@pytest.mark.parametrize(("endpoint", "caller", "expected"), CASES)
def test_access_matrix(
    endpoint: str, caller: str, expected: int, world: World, client: FlaskClient, engine: Engine
) -> None:
    method, path, body = ENDPOINTS[endpoint](world)
    before = _snapshot(engine)

    response = client.open(path, method=method, json=body, headers=world.headers[caller])

    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected >= 400:
        problem = assert_problem(response, expected)
        assert "api_key" not in problem and "token" not in problem
        assert _snapshot(engine) == before, "a refused request changed something"


def test_the_matrices_hold_every_route(app: OpenAPI) -> None:
    """Every (method, route) the app serves, bar the docs' and static files', is a row of this
    matrix, of test_o2o_authz.py's or of test_payments_authz.py's."""
    adapter = app.url_map.bind("lbs.test")
    fake = test_o2o_authz.World(1, 2, 3, 4, {"id": 5, "code": "X"}, {"id": 6, "code": "Y"}, {})
    requests = [build(World(1, 2, 3, "C", {})) for build in ENDPOINTS.values()]
    requests += [build(fake)[:3] for build in test_o2o_authz.ENDPOINTS.values()]
    paying = test_payments_authz.World(1, 2, 3, 4, "2026-W49", {})
    requests += [build(paying)[:3] for build in test_payments_authz.ENDPOINTS.values()]
    covered = {(method, adapter.match(path.split("?")[0], method=method)[0]) for method, path, _ in requests}
    # The deal desk's other actions (publish, resume, end) share pause's route.
    served = {
        (method, rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
        and not rule.endpoint.startswith(("openapi.", "swagger.", "static"))
    }
    assert served - covered == set()
