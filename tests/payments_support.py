"""localstripe for the tests (one per test session, started when none answers) and Stripe-signed
webhook deliveries built in the test, for exact order, duplicates and bad signatures."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import stripe

LOCALSTRIPE_ENV = "LBS_TEST_LOCALSTRIPE"
DEFAULT_LOCALSTRIPE_URL = "http://127.0.0.1:18420"
RUNNER = Path(__file__).resolve().parents[1] / "scripts" / "localstripe_plus.py"
# localstripe takes any sk_ key; sk_test_ makes a provider in test mode (test cards allowed).
STRIPE_TEST_KEY = "sk_test_lbs_tests_0123456789"
STRIPE_TEST_WEBHOOK_SECRET = "whsec_lbs_tests_0123456789"
START_TIMEOUT_S = 20.0

_started_url: str | None = None


def runs_this_runner(base_url: str) -> bool:
    """Whether this checkout's scripts/localstripe_plus.py answers there (not a stock
    localstripe, nor an older copy of the runner, left on the port)."""
    try:
        api = requests.get(
            f"{base_url}/v1/charges", timeout=2, headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"}
        )
        runner = requests.get(f"{base_url}/_config/runner", timeout=2)
    except requests.RequestException:
        return False
    return api.ok and runner.ok and runner.text == hashlib.sha256(RUNNER.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def localstripe_url() -> str:
    """The URL of a running localstripe: $LBS_TEST_LOCALSTRIPE (default the one scripts/localstripe
    starts) when this checkout's runner answers there, else one started here on a free port, for
    this process's lifetime."""
    global _started_url
    if _started_url is not None:
        return _started_url
    url = os.environ.get(LOCALSTRIPE_ENV, DEFAULT_LOCALSTRIPE_URL).rstrip("/")
    if runs_this_runner(url):
        return url
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"lbs-localstripe-{port}-{os.getpid()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(RUNNER), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    atexit.register(_stop, process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not runs_this_runner(url):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"localstripe did not start on {url} (log {log}): {tail}")
        time.sleep(0.05)
    _started_url = url
    return url


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def register_webhook(
    base_url: str, url: str, secret: str, *, webhook_id: str | None = None, events: list[str] | None = None
) -> str:
    """Have localstripe deliver its events to ``url`` (all, or ``events``), signed with
    ``secret``; returns the registration's id, for unregister_webhook. Registering an id again
    replaces it (scripts/localstripe's is "lbs": tests take their own)."""
    webhook_id = webhook_id or f"test-{uuid.uuid4().hex}"
    body: dict[str, Any] = {"url": url, "secret": secret}
    if events is not None:
        body["events"] = events
    requests.post(f"{base_url}/_config/webhooks/{webhook_id}", json=body, timeout=5).raise_for_status()
    return webhook_id


def unregister_webhook(base_url: str, webhook_id: str) -> None:
    requests.delete(f"{base_url}/_config/webhooks/{webhook_id}", timeout=5).raise_for_status()


def stripe_event(
    event_type: str, data_object: dict[str, Any], *, event_id: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """An event as Stripe delivers it (the fields lbs reads), about ``data_object``."""
    return {
        "id": event_id or f"evt_test_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "api_version": "2026-10-28",
        "data": {"object": data_object},
    }


def signed_event(
    payload: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery of ``payload``, signed as Stripe signs (at
    ``timestamp``, default now): another secret or an old timestamp make a bad one."""
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", "Stripe-Signature": signature(body, secret, timestamp)}


def signature(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header of ``body``, whatever it holds."""
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp))
