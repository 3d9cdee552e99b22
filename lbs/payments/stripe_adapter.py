"""Stripe as lbs's payment provider: the one module that imports ``stripe``.

It speaks to Stripe, or to localstripe in the tests and the demo (``api_base``), through the
official SDK, and turns Stripe's objects and errors into lbs's (lbs.payments.provider): its
statuses into four, lower-case currencies into upper-case, lbs's references into metadata
(``lbs_order`` on an intent, ``lbs_refund`` on a refund) and back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import stripe

from lbs.config import Settings
from lbs.payments.provider import (
    BadSignature,
    CardDeclined,
    Intent,
    IntentStatus,
    PaymentProvider,
    ProviderError,
    ProviderEvent,
    ProviderRefund,
    ProviderUnavailable,
    RefundStatus,
    TestCard,
)

INTENT_STATUSES: dict[str, IntentStatus] = {
    "requires_payment_method": "requires_payment",
    "requires_confirmation": "requires_payment",
    "requires_action": "requires_payment",
    "processing": "processing",
    # Authorised, not yet captured (lbs captures automatically; a manual capture elsewhere).
    "requires_capture": "processing",
    "succeeded": "succeeded",
    "canceled": "canceled",
}
REFUND_STATUSES: dict[str, RefundStatus] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
}
# Stripe's test payment methods. "declined": 4000000000000341, which attaches but declines the
# charge; localstripe declines no charge of the usual pm_card_visa_chargeDeclined.
TEST_CARDS: dict[TestCard, str] = {"visa": "pm_card_visa", "declined": "pm_card_chargeCustomerFail"}
WEBHOOK_TOLERANCE_S = 300
# Stripe gives latest_charge as an id unless expanded; expanded, it carries amount_refunded.
EXPAND = ["latest_charge"]
_KEYS = re.compile(r"\b(?:sk|rk)_(?:test|live)_\w+")


CALL_TIMEOUT_S = 10.0


class StripeProvider:
    """One Stripe account (its secret key), and the webhook endpoint secret of lbs's endpoint."""

    name = "stripe"

    def __init__(
        self, secret_key: str, webhook_secret: str, api_base: str = "", *, max_network_retries: int = 2
    ) -> None:
        # Retries resend the same idempotency key, so a retried call never acts twice.
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=max_network_retries,
            # Stripe's own default is 80 s; a call longer than this is retried, then failed.
            http_client=stripe.RequestsClient(timeout=CALL_TIMEOUT_S),
        )
        self._secrets = [s for s in (secret_key, webhook_secret) if s]
        self._webhook_secret = webhook_secret
        self.test_mode = secret_key.startswith("sk_test_")

    def __repr__(self) -> str:
        return f"StripeProvider(test_mode={self.test_mode})"

    def create_intent(self, *, amount_minor: int, currency: str, order_ref: str, key: str) -> Intent:
        with self._errors("creating an intent"):
            return _intent(
                self._client.v1.payment_intents.create(
                    {
                        "amount": amount_minor,
                        "currency": currency.lower(),
                        # The account's payment methods that need no redirect: a client (or
                        # pay_with_test_card) confirms without a return_url.
                        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                        "metadata": {"lbs_order": order_ref},
                        "expand": EXPAND,
                    },
                    {"idempotency_key": key},
                )
            )

    def get_intent(self, intent_id: str) -> Intent:
        with self._errors(f"reading intent {intent_id}"):
            return _intent(self._client.v1.payment_intents.retrieve(intent_id, {"expand": EXPAND}))

    def cancel_intent(self, intent_id: str, *, key: str) -> Intent:
        """Cancelled; or, when Stripe refuses because it no longer can be (succeeded, already
        cancelled, processing), the intent as it is: the caller reads its status."""
        try:
            with self._errors(f"cancelling intent {intent_id}"):
                return _intent(
                    self._client.v1.payment_intents.cancel(
                        intent_id, {"expand": EXPAND}, {"idempotency_key": key}
                    )
                )
        except ProviderError as refused:
            if refused.retryable:
                raise
            intent = self.get_intent(intent_id)
            if intent.status == "requires_payment":
                raise
            return intent

    def refund(self, intent_id: str, amount_minor: int, *, refund_ref: str, key: str) -> ProviderRefund:
        with self._errors(f"refunding intent {intent_id}"):
            return _refund(
                self._client.v1.refunds.create(
                    {
                        "payment_intent": intent_id,
                        "amount": amount_minor,
                        "metadata": {"lbs_refund": refund_ref},
                    },
                    {"idempotency_key": key},
                ),
                intent_id,
            )

    def list_refunds(self, intent_id: str) -> list[ProviderRefund]:
        """Every refund of the intent, lbs's and others' (a dashboard's), newest first."""
        with self._errors(f"listing the refunds of intent {intent_id}"):
            page = self._client.v1.refunds.list({"payment_intent": intent_id, "limit": 100})
            return [_refund(r, intent_id) for r in page.auto_paging_iter()]

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        signature = next((v for k, v in headers.items() if k.lower() == "stripe-signature"), None)
        try:
            event = stripe.Webhook.construct_event(
                body, signature, self._webhook_secret, tolerance=WEBHOOK_TOLERANCE_S
            ).to_dict()
            return ProviderEvent(
                id=event["id"],
                type=event["type"],
                intent_id=_intent_id_of(event["type"], event["data"]["object"]),
                created=datetime.fromtimestamp(event["created"], UTC),
            )
        except (stripe.SignatureVerificationError, ValueError, LookupError, TypeError, AttributeError) as e:
            # ValueError: not UTF-8 or not JSON; the others: JSON, but not shaped as an event.
            reason = self._redact(str(e))
            raise BadSignature(f"Stripe webhook refused: {type(e).__name__}: {reason}") from None

    def pay_with_test_card(self, intent_id: str, card: TestCard) -> Intent:
        if not self.test_mode:
            raise ProviderError("test cards are for test mode only (a sk_test_ secret key)")
        with self._errors(f"paying intent {intent_id} with the test card {card!r}"):
            # Stripe confirms with a payment method set beforehand (localstripe only so).
            self._client.v1.payment_intents.update(intent_id, {"payment_method": TEST_CARDS[card]})
            return _intent(self._client.v1.payment_intents.confirm(intent_id, {"expand": EXPAND}))

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except stripe.StripeError as e:
            # Not chained: the SDK's own exception may carry the request (its URL, its headers).
            raise self._error(doing, e) from None

    def _error(self, doing: str, e: stripe.StripeError) -> ProviderError:
        status = e.http_status
        message = f"Stripe, {doing}: {e.user_message or type(e).__name__}"
        if e.code:
            message += f" ({e.code})"
        if status:
            message += f" [HTTP {status}]"
        if e.request_id:
            message += f" [{e.request_id}]"  # what Stripe's support asks for
        message = self._redact(message)
        if isinstance(e, stripe.CardError):
            return CardDeclined(message)
        # 409: another request with the same idempotency key is still running.
        if isinstance(e, stripe.APIConnectionError | stripe.RateLimitError) or (
            isinstance(e, stripe.APIError) and (status is None or status >= 500 or status == 409)
        ):
            return ProviderUnavailable(message)
        return ProviderError(message)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return _KEYS.sub("[redacted]", text)


def make_provider(settings: Settings) -> PaymentProvider | None:
    """The configured provider; None when lbs takes no payments (deals paid at the counter)."""
    if settings.payment_provider == "":
        return None
    return StripeProvider(
        settings.stripe_secret_key, settings.stripe_webhook_secret, settings.stripe_api_base
    )


def _id(value: Any) -> str | None:
    """An id Stripe gives either as such or as the object expanded (localstripe: always)."""
    if isinstance(value, dict):
        return str(value["id"])
    return value if isinstance(value, str) else None


def _intent(pi: stripe.PaymentIntent) -> Intent:
    data = pi.to_dict()
    status = INTENT_STATUSES.get(data["status"])
    if status is None:
        raise ProviderError(f"Stripe: intent {data['id']} has the unknown status {data['status']!r}")
    charge = data.get("latest_charge")
    return Intent(
        id=data["id"],
        status=status,
        amount_minor=int(data["amount"]),
        currency=str(data["currency"]).upper(),
        client_secret=data.get("client_secret"),
        amount_refunded_minor=int(charge.get("amount_refunded") or 0) if isinstance(charge, dict) else 0,
        order_ref=(data.get("metadata") or {}).get("lbs_order"),
    )


def _refund(refund: stripe.Refund, intent_id: str) -> ProviderRefund:
    data = refund.to_dict()
    return ProviderRefund(
        id=data["id"],
        intent_id=_id(data.get("payment_intent")) or intent_id,
        amount_minor=int(data["amount"]),
        status=REFUND_STATUSES.get(str(data.get("status")), "pending"),
        refund_ref=(data.get("metadata") or {}).get("lbs_refund"),
    )


def _intent_id_of(event_type: str, obj: dict[str, Any]) -> str | None:
    if event_type.startswith("payment_intent."):
        return _id(obj)
    if event_type.startswith(("charge.", "refund.")):
        return _id(obj.get("payment_intent"))
    return None
