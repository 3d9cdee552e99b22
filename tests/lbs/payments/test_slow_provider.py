"""A slow payment provider does not spend the request's deadline: its calls are bounded by
their own timeout, and the database work after them still has the request's time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask_openapi3 import OpenAPI

from lbs.deadline import outside, time_left_s, within
from tests.deals_factory import bearer, make_user
from tests.freezing_proxy import FreezingProxy
from tests.prepaid_factory import prepaid_deal


def test_time_outside_does_not_count() -> None:
    with within(1.0):
        with outside():
            time.sleep(0.3)
        left = time_left_s()
    assert left is not None and 0.9 < left <= 1.0


def test_a_payment_slower_than_the_deadline_is_recorded(
    make_app: Callable[..., OpenAPI], pay_config: dict[str, Any]
) -> None:
    where = urlsplit(pay_config["stripe_api_base"])
    proxy = FreezingProxy((where.hostname or "127.0.0.1", where.port or 80))
    try:
        app = make_app(
            **{**pay_config, "stripe_api_base": f"http://127.0.0.1:{proxy.port}", "request_timeout_s": 1.0}
        )
        client = app.test_client()
        _, _, deal = prepaid_deal(client)
        _, token = make_user(client)
        headers = {**bearer(token), "Idempotency-Key": uuid.uuid4().hex}
        order = client.post(f"/v1/deals/{deal['id']}/orders", headers=headers).get_json()
        proxy.freeze()  # the provider answers the payment 1.5 s late, past the 1 s deadline
        threading.Timer(1.5, proxy.thaw).start()
        paid = client.post(f"/v1/me/orders/{order['id']}/test-payment", json={}, headers=bearer(token))
        assert paid.status_code == 200, paid.get_json()
        assert paid.get_json()["status"] == "paid" and paid.get_json()["voucher_id"] is not None
    finally:
        proxy.close()
