"""The OpenAPI document against the live app (issue 16, defect 9): schemathesis generates
requests from /openapi.json and sends them to gunicorn on each database; every response
must be declared (status, media type, headers, body schema) and none may be a 5xx.

Requests carry the credential each operation declares (operator, merchant, user), and the
path ids name real records, so that operations answer 200s and not only 401s and 404s.
The operations that end the credential they use (key and token rotation, a transfer) run
apart, with spares.

Checks left out, where JSON Schema cannot state the rule (documented in the config below):
positive_data_acceptance on operations whose rules span fields (a deal's prices and dates,
a tile's x and y below 2^z, a box's minLat <= maxLat, a cursor bound to its query), need a
record to exist, follow a grammar (opening_hours) or strip whitespace before counting
length; the server answers those with a 400 naming the field,
which is what the suite checks elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lbs.app import create_app
from tests.conftest import OPERATOR, OPERATOR_TOKEN, OPERATOR_TOKEN_SHA256
from tests.deals_factory import bearer, create_deal, make_merchant, make_user
from tests.e2e.server import E2E_SECRET_KEY, gunicorn
from tests.payments_support import STRIPE_TEST_KEY, STRIPE_TEST_WEBHOOK_SECRET

pytestmark = pytest.mark.gunicorn

MAX_EXAMPLES = 60
# Operations that end the key or token the run uses: rotation, and a transfer (schemathesis
# feeds values from responses back into requests, so it sends the code that
# POST /v1/me/transfer-code gave, and the user moves).
ENDS_ITS_CREDENTIAL = ("POST /v1/merchant/api-keys/rotate", "POST /v1/me/token", "POST /v1/users/transfer")
# Rules JSON Schema cannot state: positive_data_acceptance is off for these (see above).
CROSS_FIELD = [
    "POST /v1/merchant/deals",  # deal_price_minor <= list_price_minor, valid_until > valid_from, ...
    "PATCH /v1/merchant/deals/{deal_id}",  # the same, against the deal as it would become
    "POST /v1/merchant/deals/{deal_id}/{action}",  # a transition from the deal's state
    "GET /v1/tiles/{z}/{x}/{y}.mvt",  # x and y below 2^z
    "GET /v1/merchants",  # bbox: minLat <= maxLat; cluster=true needs zoom
    "GET /v1/nearby",  # a cursor is bound to the query that made it
    "GET /v1/me/vouchers",  # the same: a cursor this list gave, for the same status
    "GET /v1/merchant/vouchers",  # the same, for the same status and deal_id
    "GET /v1/merchant/events",  # a cursor this feed gave
    "POST /v1/merchants",  # opening_hours' grammar; names counted after stripping whitespace
    "PATCH /v1/merchants/{merchant_id}",  # the same
    "POST /v1/deals/{deal_id}/claim",  # a deal claimable now, within its per-user limit
    "POST /v1/merchant/vouchers/redeem",  # a code that exists (404 otherwise)
    "POST /v1/users/transfer",  # a code that exists (404 otherwise)
    "POST /v1/events",  # a merchant that exists, lat and lon both or neither
    "GET /v1/me/orders",  # a cursor this list gave
    "GET /v1/merchant/settlements",  # the same
    "GET /v1/merchant/settlements/{period}",  # an ISO week that exists (2026-W53 does not)
    "GET /v1/merchant/insights",  # from <= to, at most 366 days apart; a deal_id of the merchant's
    "GET /v1/merchant/insights.csv",  # the same
    "GET /v1/merchant/insights/chart.svg",  # the same
    "POST /v1/deals/{deal_id}/orders",  # a prepaid deal claimable now, within its per-user limit
    "POST /v1/me/orders/{order_id}/test-payment",  # an order still pending
    "POST /v1/payments/stripe/webhook",  # a signature made with the webhook's secret
    "POST /v1/me/reviews",  # a voucher of the user's, redeemed in the last 30 days, not reviewed yet
    "PATCH /v1/me/reviews/{review_id}",  # rating or text; text counted after stripping whitespace
    "GET /v1/me/reviews",  # a cursor this list gave
    "GET /v1/merchants/{merchant_id}/reviews",  # the same, for the same merchant and sort
    "POST /v1/merchant/reviews/{review_id}/reply",  # once (409 after); text counted after stripping
    "POST /v1/me/harassment-reports",  # a merchant that exists; a review of the user's, of it
]
# Limits that would answer 429 to a run's many valid requests.
LIMITS = {"LBS_RATE_LIMIT_REPORTS": "100000/minute"}


def payments(localstripe: str) -> dict[str, str]:
    """The workers take payments through localstripe, so that those operations answer too."""
    return {
        "LBS_PAYMENT_PROVIDER": "stripe",
        "LBS_STRIPE_SECRET_KEY": STRIPE_TEST_KEY,
        "LBS_STRIPE_WEBHOOK_SECRET": STRIPE_TEST_WEBHOOK_SECRET,
        "LBS_STRIPE_API_BASE": localstripe,
    }


def seed(database_url: str, localstripe: str) -> dict[str, str]:
    """Records for the path ids and credentials: a merchant with a key (and a spare), a
    published deal, a user holding a voucher of it (and a spare user), a prepaid deal with
    a pending order of the user's, and the user's review of a voucher of another deal."""
    settings = {name.removeprefix("LBS_").lower(): value for name, value in payments(localstripe).items()}
    app = create_app(
        {"database_url": database_url, "operator_token_sha256": OPERATOR_TOKEN_SHA256,
         "secret_key": E2E_SECRET_KEY, "rate_limit_new_users": "10000/minute", **settings}
    )  # fmt: skip
    client = app.test_client()
    merchant_id, key = make_merchant(client)
    spare_key = client.post(f"/v1/merchants/{merchant_id}/api-keys", headers=OPERATOR).get_json()
    deal = create_deal(client, key, publish=True, payment="at_counter")
    prepaid = create_deal(client, key, publish=True, payment="prepaid", per_user_limit=100)
    _, token = make_user(client)
    _, spare_token = make_user(client)
    claim = client.post(f"/v1/deals/{deal['id']}/claim", headers={**bearer(token), "Idempotency-Key": "st"})
    assert claim.status_code == 201, claim.get_data(as_text=True)
    order = client.post(
        f"/v1/deals/{prepaid['id']}/orders", headers={**bearer(token), "Idempotency-Key": "st"}
    )
    assert order.status_code == 201, order.get_data(as_text=True)
    reviewed = create_deal(client, key, publish=True, payment="at_counter", title="Reviewed")
    voucher = client.post(
        f"/v1/deals/{reviewed['id']}/claim", headers={**bearer(token), "Idempotency-Key": "rv"}
    )
    code = voucher.get_json()["code"]
    assert (
        client.post("/v1/merchant/vouchers/redeem", json={"code": code}, headers=bearer(key)).status_code
        == 200
    )
    body = {"voucher_id": voucher.get_json()["id"], "rating": 4, "text": "Fine"}
    review = client.post("/v1/me/reviews", json=body, headers=bearer(token))
    assert review.status_code == 201, review.get_data(as_text=True)
    app.extensions["lbs"].events.close()
    app.extensions["lbs"].rate_limits.close()
    app.extensions["lbs"].engine.dispose()
    return {
        "merchant_id": str(merchant_id),
        "key": key,
        "spare_key": spare_key["api_key"],
        "spare_key_id": str(spare_key["key_id"]),
        "deal_id": str(deal["id"]),
        "token": token,
        "spare_token": spare_token,
        "voucher_id": str(claim.get_json()["id"]),
        "order_id": str(order.get_json()["id"]),
        "review_id": str(review.get_json()["id"]),
    }


def config(ids: dict[str, str], merchant_key: str, user_token: str) -> str:
    lines = [
        'seed = 16\nsuppress-health-check = ["filter_too_much"]',
        f"[generation]\nmax-examples = {MAX_EXAMPLES}",
        # Checks of the whole API's state over a run, not of a response to its request.
        "[checks.use_after_free]\nenabled = false\n[checks.ensure_resource_availability]\nenabled = false",
        f'[auth.openapi.operator]\nbearer = "{OPERATOR_TOKEN}"',
        f'[auth.openapi.merchant]\nbearer = "{merchant_key}"',
        f'[auth.openapi.user]\nbearer = "{user_token}"',
        "[parameters]",
        *(
            f'"path.{name}" = {ids[name]}'
            for name in ("merchant_id", "deal_id", "voucher_id", "order_id", "review_id")
        ),
        '"path.period" = "2026-W49"',
        f'"path.key_id" = {ids["spare_key_id"]}',
    ]
    for name in CROSS_FIELD:
        lines.append(
            f'[[operations]]\ninclude-name = "{name}"\nchecks.positive_data_acceptance.enabled = false'
        )
    return "\n".join(lines) + "\n"


def schemathesis(base_url: str, config_file: Path, *filters: str) -> str:
    """st run with the config and filters; the report, asserting it found nothing.

    One worker: with two, CPython 3.11.7's ast.parse (Hypothesis describing a filter's
    lambda) raced between the threads ("AST constructor recursion depth mismatch",
    CPython gh-106905, fixed in 3.11.8) and ended operations early."""
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"), "--config-file", str(config_file), "run",
            f"{base_url}/openapi.json", "--phases", "examples,coverage,fuzzing", "--workers", "1",
            "--no-color", *filters,
        ],
        capture_output=True, text=True, timeout=900, cwd=config_file.parent,  # its cache dir there
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )  # fmt: skip
    report = run.stdout[-20000:] + run.stderr[-5000:]
    assert run.returncode == 0, report
    return report


def test_every_response_is_what_the_document_declares(
    database_url: str, tmp_path: Path, localstripe: str
) -> None:
    ids = seed(database_url, localstripe)
    main, spares = tmp_path / "main.toml", tmp_path / "spares.toml"
    main.write_text(config(ids, ids["key"], ids["token"]))
    spares.write_text(config(ids, ids["spare_key"], ids["spare_token"]))
    ending = [arg for name in ENDS_ITS_CREDENTIAL for arg in ("--include-name", name)]
    keeping = [arg for name in ENDS_ITS_CREDENTIAL for arg in ("--exclude-name", name)]
    with gunicorn(
        database_url,
        tmp_path,
        OPERATOR_TOKEN_SHA256,
        workers=2,
        env={**payments(localstripe), **LIMITS},
        serving_config=True,
    ) as server:
        document = server.get("/openapi.json", "document").json()
        reports = [
            schemathesis(server.base_url, main, *keeping),
            schemathesis(server.base_url, spares, *ending),
        ]

    # Every operation is tested but GET /openapi.json, the document itself, which schemathesis leaves out.
    operations = sum(len(item) for item in document["paths"].values()) - 1
    tested = [int(report.split("Tested: ")[1].split()[0]) for report in reports]
    assert tested == [operations - len(ENDS_ITS_CREDENTIAL), len(ENDS_ITS_CREDENTIAL)], reports[0]
    for report in reports:
        assert "Authentication failed" not in report, report
