"""Apps that take payments through localstripe (tests/payments_support.py starts it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

WEBHOOK_SECRET = "whsec_lbs_test"
SECRET_KEY = "sk_test_lbs"


@pytest.fixture
def pay_config(localstripe: str) -> dict[str, Any]:
    return {
        "payment_provider": "stripe",
        "stripe_secret_key": SECRET_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": localstripe,
    }


@pytest.fixture
def pay_app(make_app: Callable[..., OpenAPI], pay_config: dict[str, Any]) -> OpenAPI:
    return make_app(**pay_config)


@pytest.fixture
def pay_client(pay_app: OpenAPI) -> FlaskClient:
    return pay_app.test_client()

