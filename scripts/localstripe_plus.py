"""localstripe, patched closer to Stripe where lbs depends on it: test and demo tooling only.

localstripe (GPL-3.0) is imported here, in a process of its own; lbs (Apache-2.0) only talks
to it over HTTP, as it would to Stripe, and never imports it. The patches (found in a spike;
docs/payments.md, "localstripe: what it lacks and how it is covered", has the whole list):

- no persistence: stock localstripe pickles its whole store to /tmp/localstripe.pickle on every
  write (slower with every object, and shared by every instance on the machine);
- Idempotency-Key: the same key and body answer the first response again (with
  ``Idempotent-Replayed: true``), the same key with another body a 400 idempotency_error;
- the events localstripe never sends: payment_intent.canceled, refund.created, charge.refunded,
  signed and delivered like the rest;
- refunds bounded by what is left of the charge (400 charge_already_refunded when nothing is,
  400 amount_too_large when less is), and a 400, not a 500, for an intent never charged;
  listing the refunds of such an intent answers an empty list, as Stripe does;
- an intent whose card was declined is payable again once given another payment method;
- automatic_payment_methods accepted (and ignored) on create, cancellation_reason on cancel;
  ``DELETE /_config/webhooks/<id>`` unregisters a webhook; ``GET /_config/runner`` answers the
  sha256 of this file (which runner answers on a port).

    python scripts/localstripe_plus.py --port 18420 [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe import resources, webhooks
from localstripe.errors import UserError
from localstripe.resources import Charge, Event, PaymentIntent, Refund

resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]

# Idempotency: (Authorization, key) -> (fingerprint of path and body, (status, body) once answered).
_replies: dict[tuple[str, str], tuple[str, tuple[int, bytes] | None]] = {}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _idempotency_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"type": "idempotency_error", "message": message}}, status=status)


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "DELETE" and request.path == "/_config/data":
        _replies.clear()
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    slot = (request.headers.get("Authorization", ""), key)
    fingerprint = hashlib.sha256(request.path.encode() + b"?" + await request.read()).hexdigest()
    if slot in _replies:
        first, reply = _replies[slot]
        if first != fingerprint:
            return _idempotency_error(400, f"Keys for idempotent requests can only be used with the same "
                                           f"parameters they were first used with (key {key!r}).")
        if reply is None:
            return _idempotency_error(409, f"Another request with the key {key!r} is in progress.")
        return web.Response(status=reply[0], body=reply[1], content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    _replies[slot] = (fingerprint, None)
    try:
        response = await handler(request)
    except BaseException:
        del _replies[slot]
        raise
    # Like Stripe, remember what the endpoint answered, errors included; not a crash (5xx).
    if isinstance(response, web.Response) and response.status < 500 and isinstance(response.body, bytes):
        _replies[slot] = (fingerprint, (response.status, response.body))
    else:
        del _replies[slot]
    return response


_create_intent = PaymentIntent._api_create


def create_intent(cls: type, automatic_payment_methods: Any = None, **data: Any) -> Any:
    return _create_intent(**data)  # every method is a card here: nothing to choose from


_update_intent = PaymentIntent._api_update


def update_intent(cls: type, id: str, **data: Any) -> Any:
    intent = _update_intent(id, **data)
    charge = intent.latest_charge
    if "payment_method" in data and charge is not None and charge.status == "failed":
        intent.latest_charge = None  # payable again with the new method (stock: stuck after a decline)
    return intent


PaymentIntent._api_create = classmethod(create_intent)  # type: ignore[method-assign,assignment]
PaymentIntent._api_update = classmethod(update_intent)  # type: ignore[method-assign,assignment]
_cancel_intent = PaymentIntent._api_cancel


def cancel_intent(id: str, cancellation_reason: str | None = None, **kwargs: Any) -> Any:
    intent = _cancel_intent(id, **kwargs)
    resources.schedule_webhook(Event("payment_intent.canceled", intent))
    return intent


# The routes of the extra endpoints hold the functions themselves: swap them before the server
# module builds its routes from this list.
resources.extra_apis[:] = [
    (method, url, cancel_intent if func == _cancel_intent else func)
    for method, url, func in resources.extra_apis
]

_create_refund = Refund._api_create
_list_refunds = Refund._api_list_all


def create_refund(cls: type, **data: Any) -> Any:
    if isinstance(data.get("payment_intent"), str) and data.get("charge") is None:
        charge = PaymentIntent._api_retrieve(data["payment_intent"]).latest_charge
        if charge is None:
            raise UserError(400, "This PaymentIntent does not have a successful charge to refund.",
                            {"code": "charge_not_refundable"})
    elif isinstance(data.get("charge"), str):
        charge = Charge._api_retrieve(data["charge"])
    else:
        return _create_refund(**data)  # its own "Expected charge or payment_intent"
    if charge.status == "succeeded":  # a failed charge: localstripe's own 400
        left = charge.amount - charge.amount_refunded
        amount = resources.try_convert_to_int(data.get("amount", left))
        if left <= 0:
            raise UserError(400, f"Charge {charge.id} has already been refunded.",
                            {"code": "charge_already_refunded"})
        if isinstance(amount, int) and amount > left:
            raise UserError(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                                 f"({left}).", {"code": "amount_too_large"})
        data["amount"] = amount
    refund = _create_refund(**data)
    refund.payment_intent = refund.payment_intent or charge.payment_intent
    resources.schedule_webhook(Event("refund.created", refund))
    resources.schedule_webhook(Event("charge.refunded", charge))
    return refund


def list_refunds(cls: type, url: str, payment_intent: str | None = None, **kwargs: Any) -> Any:
    if isinstance(payment_intent, str) and PaymentIntent._api_retrieve(payment_intent).latest_charge is None:
        return resources.List(url)
    return _list_refunds(url, payment_intent=payment_intent, **kwargs)


Refund._api_create = classmethod(create_refund)  # type: ignore[method-assign,assignment]
Refund._api_list_all = classmethod(list_refunds)  # type: ignore[method-assign,assignment]

from localstripe import server  # noqa: E402  (after the swap above: it builds its routes on import)

# Of the file as it was started: the one on disk may have changed since (a checkout updated
# under a running localstripe), and then this one is an older runner.
RUNNER_SHA256 = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


async def runner_digest(request: web.Request) -> web.Response:
    """Which runner answers: the sha256 of this file, so that a client can tell it from another
    localstripe (stock, or an older copy) left on the port."""
    return web.Response(text=RUNNER_SHA256)


async def unregister_webhook(request: web.Request) -> web.Response:
    webhooks._webhooks.pop(request.match_info["id"], None)
    return web.Response()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server.app.middlewares.insert(0, idempotency)
    server.app.router.add_delete("/_config/webhooks/{id}", unregister_webhook)
    server.app.router.add_get("/_config/runner", runner_digest)
    web.run_app(server.app, host=args.host, port=args.port, access_log=logging.getLogger("aiohttp.access"))


if __name__ == "__main__":
    main()
