"""The provider as a request calls it: its calls do not spend the request's deadline.

A request's deadline (LBS_REQUEST_TIMEOUT_S) bounds its queueing and database work, and
lbs.db gives each statement only the time left. A test payment makes four provider calls,
and a webhook two: with a slow provider they could leave the statements after them no
time, so a payment taken would not be recorded (a 503, and the connection cut). The
provider's calls are bounded by its own timeout instead (the adapter's).
"""

from __future__ import annotations

from collections.abc import Mapping

from lbs.deadline import outside
from lbs.payments.provider import Intent, PaymentProvider, ProviderEvent, ProviderRefund, TestCard


class OutsideDeadline:
    def __init__(self, provider: PaymentProvider) -> None:
        self._provider = provider
        self.name = provider.name
        self.test_mode = provider.test_mode

    def create_intent(self, *, amount_minor: int, currency: str, order_ref: str, key: str) -> Intent:
        with outside():
            return self._provider.create_intent(
                amount_minor=amount_minor, currency=currency, order_ref=order_ref, key=key
            )

    def get_intent(self, intent_id: str) -> Intent:
        with outside():
            return self._provider.get_intent(intent_id)

    def cancel_intent(self, intent_id: str, *, key: str) -> Intent:
        with outside():
            return self._provider.cancel_intent(intent_id, key=key)

    def refund(self, intent_id: str, amount_minor: int, *, refund_ref: str, key: str) -> ProviderRefund:
        with outside():
            return self._provider.refund(intent_id, amount_minor, refund_ref=refund_ref, key=key)

    def list_refunds(self, intent_id: str) -> list[ProviderRefund]:
        with outside():
            return self._provider.list_refunds(intent_id)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        return self._provider.parse_webhook(body, headers)

    def pay_with_test_card(self, intent_id: str, card: TestCard) -> Intent:
        with outside():
            return self._provider.pay_with_test_card(intent_id, card)
