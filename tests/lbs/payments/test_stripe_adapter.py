"""The Stripe provider against localstripe (scripts/localstripe_plus.py): intents, test cards,
refunds, idempotency keys, webhooks (built here, and delivered by localstripe), errors."""

from __future__ import annotations

import ast
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from lbs.config import Settings
from lbs.payments.provider import (
    BadSignature,
    CardDeclined,
    ProviderError,
    ProviderEvent,
    ProviderUnavailable,
)
from lbs.payments.stripe_adapter import StripeProvider, make_provider
from tests.payments_support import (
    STRIPE_TEST_KEY,
    STRIPE_TEST_WEBHOOK_SECRET,
    free_port,
    register_webhook,
    signature,
    signed_event,
    stripe_event,
    unregister_webhook,
)


@pytest.fixture
def provider(localstripe: str) -> StripeProvider:
    return StripeProvider(STRIPE_TEST_KEY, STRIPE_TEST_WEBHOOK_SECRET, localstripe)


def key() -> str:
    return f"lbs:test:{uuid.uuid4()}"


def new_intent(provider: StripeProvider, amount_minor: int = 1250, order_ref: str | None = None) -> str:
    return provider.create_intent(
        amount_minor=amount_minor, currency="EUR", order_ref=order_ref or str(uuid.uuid4()), key=key()
    ).id


def paid_intent(provider: StripeProvider, amount_minor: int = 1250) -> str:
    intent_id = new_intent(provider, amount_minor)
    assert provider.pay_with_test_card(intent_id, "visa").status == "succeeded"
    return intent_id


def test_an_intent_is_created_payable_in_lbs_terms(provider: StripeProvider, localstripe: str) -> None:
    order_ref = str(uuid.uuid4())
    intent = provider.create_intent(amount_minor=1250, currency="EUR", order_ref=order_ref, key=key())

    assert intent.status == "requires_payment"
    assert (intent.amount_minor, intent.currency, intent.order_ref) == (1250, "EUR", order_ref)
    assert intent.amount_refunded_minor == 0
    assert intent.client_secret is not None and intent.client_secret.startswith(f"{intent.id}_secret_")
    assert provider.get_intent(intent.id) == intent
    # What Stripe holds: its currency lower-case, lbs's order in the metadata.
    raw = requests.get(
        f"{localstripe}/v1/payment_intents/{intent.id}",
        timeout=5,
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
    ).json()
    assert (raw["currency"], raw["metadata"]) == ("eur", {"lbs_order": order_ref})


def test_a_visa_pays_and_a_declined_card_leaves_the_intent_payable(provider: StripeProvider) -> None:
    intent_id = new_intent(provider)

    with pytest.raises(CardDeclined) as declined:
        provider.pay_with_test_card(intent_id, "declined")
    assert not declined.value.retryable
    assert provider.get_intent(intent_id).status == "requires_payment"

    paid = provider.pay_with_test_card(intent_id, "visa")
    assert (paid.id, paid.status, paid.amount_minor) == (intent_id, "succeeded", 1250)
    assert provider.get_intent(intent_id).status == "succeeded"


def test_cancel_cancels_an_unpaid_intent_and_leaves_a_final_one_as_it_is(provider: StripeProvider) -> None:
    unpaid = new_intent(provider)
    assert provider.cancel_intent(unpaid, key=key()).status == "canceled"
    assert provider.get_intent(unpaid).status == "canceled"
    assert provider.cancel_intent(unpaid, key=key()).status == "canceled"  # again: no error

    paid = paid_intent(provider)
    assert provider.cancel_intent(paid, key=key()).status == "succeeded"
    assert provider.get_intent(paid).status == "succeeded"

    with pytest.raises(ProviderError) as unknown:
        provider.cancel_intent("pi_doesnotexist", key=key())
    assert not unknown.value.retryable


def test_refunds_partial_then_the_rest_and_no_more(provider: StripeProvider) -> None:
    intent_id = paid_intent(provider, 1250)
    first_ref, rest_ref = str(uuid.uuid4()), str(uuid.uuid4())

    first = provider.refund(intent_id, 300, refund_ref=first_ref, key=key())
    assert (first.intent_id, first.amount_minor, first.status, first.refund_ref) == (
        intent_id,
        300,
        "succeeded",
        first_ref,
    )
    assert provider.get_intent(intent_id).amount_refunded_minor == 300
    with pytest.raises(ProviderError) as too_much:
        provider.refund(intent_id, 951, refund_ref=str(uuid.uuid4()), key=key())
    assert not too_much.value.retryable

    rest = provider.refund(intent_id, 950, refund_ref=rest_ref, key=key())
    assert provider.get_intent(intent_id).amount_refunded_minor == 1250
    with pytest.raises(ProviderError) as refunded:
        provider.refund(intent_id, 1, refund_ref=str(uuid.uuid4()), key=key())
    assert not refunded.value.retryable

    listed = provider.list_refunds(intent_id)
    assert sorted((r.id, r.amount_minor, r.refund_ref) for r in listed) == sorted(
        [(first.id, 300, first_ref), (rest.id, 950, rest_ref)]
    )
    assert {r.intent_id for r in listed} == {intent_id}


def test_an_unpaid_or_cancelled_intent_has_nothing_to_refund(provider: StripeProvider) -> None:
    unpaid = new_intent(provider)
    cancelled = new_intent(provider)
    provider.cancel_intent(cancelled, key=key())

    for intent_id in (unpaid, cancelled):
        assert provider.list_refunds(intent_id) == []
        with pytest.raises(ProviderError) as refused:
            provider.refund(intent_id, 100, refund_ref=str(uuid.uuid4()), key=key())
        assert not refused.value.retryable  # a 400, never a (retryable) 5xx


def test_a_key_sent_again_gets_the_first_result(provider: StripeProvider) -> None:
    order_ref, create_key = str(uuid.uuid4()), key()
    first = provider.create_intent(amount_minor=500, currency="EUR", order_ref=order_ref, key=create_key)
    again = provider.create_intent(amount_minor=500, currency="EUR", order_ref=order_ref, key=create_key)
    assert again.id == first.id
    with pytest.raises(ProviderError) as other_params:
        provider.create_intent(amount_minor=501, currency="EUR", order_ref=order_ref, key=create_key)
    assert not other_params.value.retryable

    provider.pay_with_test_card(first.id, "visa")
    refund_key, refund_ref = key(), str(uuid.uuid4())
    refund = provider.refund(first.id, 200, refund_ref=refund_ref, key=refund_key)
    assert provider.refund(first.id, 200, refund_ref=refund_ref, key=refund_key).id == refund.id
    assert [r.id for r in provider.list_refunds(first.id)] == [refund.id]
    assert provider.get_intent(first.id).amount_refunded_minor == 200


def test_parse_webhook_reads_a_well_signed_delivery(provider: StripeProvider) -> None:
    created = int(time.time()) - 10
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"}, "pi_1"),
        ("charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": "pi_2"}, "pi_2"),
        # An expanded intent, as localstripe gives it.
        ("refund.created", {"id": "re_1", "object": "refund", "payment_intent": {"id": "pi_3"}}, "pi_3"),
        ("customer.created", {"id": "cus_1", "object": "customer"}, None),
    ]
    for event_type, data_object, intent_id in cases:
        payload = stripe_event(event_type, data_object, event_id="evt_1", created=created)
        body, headers = signed_event(payload, STRIPE_TEST_WEBHOOK_SECRET)
        event = provider.parse_webhook(body, {k.lower(): v for k, v in headers.items()})
        assert event == ProviderEvent("evt_1", event_type, intent_id, event.created)
        assert event.created.timestamp() == created and event.created.utcoffset() is not None


def test_parse_webhook_refuses_what_does_not_verify(provider: StripeProvider) -> None:
    payload = stripe_event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})
    body, headers = signed_event(payload, STRIPE_TEST_WEBHOOK_SECRET)
    _, another_secrets = signed_event(payload, "whsec_someone_else")
    _, stale = signed_event(payload, STRIPE_TEST_WEBHOOK_SECRET, timestamp=int(time.time()) - 301)

    refused = [
        (body, another_secrets),
        (body.replace(b"pi_1", b"pi_2"), headers),
        (body, stale),
        (body, {"Content-Type": "application/json"}),
        (body, {"Stripe-Signature": "garbage"}),
        (b"\xff\xfe", headers),
    ]
    # Signed well, but no event.
    for junk in (b"{not json", b"[]", b'{"id": "evt_1"}', b'{"id": "e", "type": "t", "data": 1}'):
        refused.append((junk, {"Stripe-Signature": signature(junk, STRIPE_TEST_WEBHOOK_SECRET)}))
    for refused_body, refused_headers in refused:
        with pytest.raises(BadSignature):
            provider.parse_webhook(refused_body, refused_headers)
    assert provider.parse_webhook(body, headers).intent_id == "pi_1"


class _Deliveries(BaseHTTPRequestHandler):
    received: queue.Queue[tuple[bytes, dict[str, str]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put((body, dict(self.headers.items())))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook_endpoint(localstripe: str) -> Iterator[queue.Queue[tuple[bytes, dict[str, str]]]]:
    """Deliveries from localstripe to a small HTTP server here, as (raw body, headers)."""
    received: queue.Queue[tuple[bytes, dict[str, str]]] = queue.Queue()
    handler = type("Deliveries", (_Deliveries,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    webhook_id = register_webhook(
        localstripe, f"http://127.0.0.1:{server.server_port}/webhook", STRIPE_TEST_WEBHOOK_SECRET
    )
    yield received
    unregister_webhook(localstripe, webhook_id)
    server.shutdown()
    server.server_close()


def test_localstripe_delivers_signed_events_about_the_intent(
    provider: StripeProvider, webhook_endpoint: queue.Queue[tuple[bytes, dict[str, str]]]
) -> None:
    paid = paid_intent(provider)
    provider.refund(paid, 100, refund_ref=str(uuid.uuid4()), key=key())
    cancelled = new_intent(provider)
    provider.cancel_intent(cancelled, key=key())
    expected = {
        ("payment_intent.succeeded", paid),
        ("refund.created", paid),
        ("charge.refunded", paid),
        ("payment_intent.canceled", cancelled),
    }

    seen: set[tuple[str, str | None]] = set()
    deadline = time.monotonic() + 10  # localstripe sends each event a second after it
    while not expected <= seen:
        body, headers = webhook_endpoint.get(timeout=max(0.1, deadline - time.monotonic()))
        event = provider.parse_webhook(body, headers)
        seen.add((event.type, event.intent_id))
    assert expected <= seen


def test_an_unreachable_api_is_retryable_and_no_error_shows_the_key(localstripe: str) -> None:
    secret_key = f"sk_test_{uuid.uuid4().hex}"
    closed = StripeProvider(secret_key, STRIPE_TEST_WEBHOOK_SECRET, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderUnavailable) as unreachable:
        closed.get_intent(secret_key)  # the key in the URL, the message and the network error
    assert unreachable.value.retryable

    working = StripeProvider(secret_key, STRIPE_TEST_WEBHOOK_SECRET, localstripe)
    errors: list[ProviderError] = [unreachable.value]
    for call in (
        lambda: working.get_intent(secret_key),
        lambda: working.refund(secret_key, 1, refund_ref=secret_key, key=secret_key),
        lambda: working.pay_with_test_card(new_intent(working), "declined"),
        lambda: working.parse_webhook(secret_key.encode(), {"Stripe-Signature": secret_key}),
    ):
        with pytest.raises(ProviderError) as error:
            call()
        errors.append(error.value)
    assert [type(e) for e in errors[-2:]] == [CardDeclined, BadSignature]
    for error_value in errors:
        assert secret_key not in str(error_value) and secret_key not in repr(error_value)
        assert error_value.__cause__ is None and error_value.__suppress_context__  # none in a traceback
    assert secret_key not in repr(working)


def test_test_cards_need_a_test_key_and_no_provider_is_made_without_one() -> None:
    live = StripeProvider("sk_live_abc", STRIPE_TEST_WEBHOOK_SECRET, f"http://127.0.0.1:{free_port()}")
    assert not live.test_mode
    with pytest.raises(ProviderError) as refused:
        live.pay_with_test_card("pi_1", "visa")
    assert type(refused.value) is ProviderError  # refused here, nothing sent

    assert make_provider(Settings()) is None


def test_make_provider_builds_stripe_from_the_settings(localstripe: str) -> None:
    provider = make_provider(
        Settings(
            payment_provider="stripe",
            stripe_secret_key=STRIPE_TEST_KEY,
            stripe_webhook_secret=STRIPE_TEST_WEBHOOK_SECRET,
            stripe_api_base=localstripe + "/",
        )
    )
    assert provider is not None and provider.name == "stripe" and provider.test_mode
    intent = provider.create_intent(amount_minor=700, currency="SEK", order_ref="o", key=key())
    assert (provider.get_intent(intent.id).currency, intent.amount_minor) == ("SEK", 700)


def test_only_the_adapter_imports_stripe_and_nothing_imports_localstripe() -> None:
    """stripe stays behind lbs.payments.provider; localstripe (GPL-3.0) is only ever run."""
    lbs_dir = Path(__file__).resolve().parents[3] / "lbs"
    importers: dict[str, set[str]] = {"stripe": set(), "localstripe": set()}
    for path in lbs_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                if name.split(".")[0] in importers:
                    importers[name.split(".")[0]].add(path.relative_to(lbs_dir).as_posix())
    assert importers == {"stripe": {"payments/stripe_adapter.py"}, "localstripe": set()}
