"""What lbs needs of a payment provider, in its own terms: an intent to pay, a refund, an event.

The only implementation is Stripe's (lbs.payments.stripe_adapter), run against localstripe in
the tests and the demo; nothing outside that module imports ``stripe``. Amounts are integer
minor units and currencies upper-case ISO 4217 codes, as everywhere in lbs.

Every call that moves money or changes an intent takes an idempotency ``key``: the same key
sent again (a retry after a timeout, a second run of a job) has the provider return the first
result instead of acting twice. Keys are derived from lbs's own random uuids, never from
sequential ids (a test database restarts them at 1; Stripe remembers keys for 24 hours).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

# requires_payment: created, or its last attempt failed (a declined card): still payable.
IntentStatus = Literal["requires_payment", "processing", "succeeded", "canceled"]
RefundStatus = Literal["pending", "succeeded", "failed"]
TestCard = Literal["visa", "declined"]


class ProviderError(Exception):
    """The provider refused or could not be reached; ``retryable`` when the same call, with
    the same idempotency key, may succeed later."""

    retryable = False


class ProviderUnavailable(ProviderError):
    retryable = True


class CardDeclined(ProviderError):
    """A test payment's card was declined (the intent stays payable)."""


class BadSignature(ProviderError):
    """A webhook whose signature does not verify with the configured secret, or is too old."""


@dataclass(frozen=True)
class Intent:
    id: str
    status: IntentStatus
    amount_minor: int
    currency: str
    # Handed to the paying client (Stripe.js confirms with it); None where not given.
    client_secret: str | None
    amount_refunded_minor: int
    # The lbs order uuid this intent was created for (its metadata), if any.
    order_ref: str | None


@dataclass(frozen=True)
class ProviderRefund:
    id: str
    intent_id: str
    amount_minor: int
    status: RefundStatus
    # The lbs refund uuid it was made for (its metadata); None for one made elsewhere (a dashboard).
    refund_ref: str | None


@dataclass(frozen=True)
class ProviderEvent:
    id: str
    type: str
    # The intent the event is about, when it is about one (payment_intent.*, charge.refunded).
    intent_id: str | None
    created: datetime


class PaymentProvider(Protocol):
    name: str
    # Test keys (sk_test_…): test cards may be charged server-side (the demo's and the tests' payer).
    test_mode: bool

    def create_intent(self, *, amount_minor: int, currency: str, order_ref: str, key: str) -> Intent: ...

    def get_intent(self, intent_id: str) -> Intent: ...

    def cancel_intent(self, intent_id: str, *, key: str) -> Intent:
        """Cancelled, or as it is when it can no longer be (succeeded, already cancelled)."""
        ...

    def refund(self, intent_id: str, amount_minor: int, *, refund_ref: str, key: str) -> ProviderRefund: ...

    def list_refunds(self, intent_id: str) -> list[ProviderRefund]: ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """The event a delivery carries, once its signature verifies (else BadSignature).
        ``body`` is the raw request body, as signed."""
        ...

    def pay_with_test_card(self, intent_id: str, card: TestCard) -> Intent:
        """Test mode only: pay the intent as a client would with the card (CardDeclined for
        "declined"). A ProviderError in live mode."""
        ...
