"""Request deadlines: the WSGI middleware that gives each request its time, and the clock the database reads.

A request has ``timeout_s`` from the moment its last byte reached this host. The middleware
skips a request whose client has already gone (nothing would read the answer) and answers
503 at once to one that waited in gunicorn's queue past its deadline; the others run with
their deadline in a context variable, which lbs.db reads before every statement to bound it
by the time left (docs/operations.md says what a client sees).
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from lbs import metrics
from lbs.errors import NotReady

log = logging.getLogger(__name__)

# What a client told to come back should wait: the queue that made it late drains in about that.
RETRY_AFTER_S = 1
# struct tcp_info (linux/tcp.h): tcpi_last_data_recv, ms since data last arrived on the socket;
# its offset has been part of the kernel's ABI since 2.6.
_TCP_INFO_BYTES = 104
_LAST_DATA_RECV = struct.Struct("=I")
_LAST_DATA_RECV_OFFSET = 52

_deadline: ContextVar[float | None] = ContextVar("lbs_request_deadline", default=None)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class DeadlineExceeded(NotReady):
    """The request's time ran out (queued too long, or its database work could not finish in time)."""

    slug = "deadline-exceeded"
    title = "Deadline exceeded"

    def __init__(
        self, detail: str = "the request could not be answered within its deadline; retry later"
    ) -> None:
        super().__init__(detail, retry_after_s=RETRY_AFTER_S)
        self.headers["Retry-After"] = str(RETRY_AFTER_S)


def time_left_s() -> float | None:
    """Seconds left to the current request's deadline (negative once past); None outside a request."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def expired() -> bool:
    left = time_left_s()
    return left is not None and left <= 0


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Run the block with a deadline ``seconds`` from now."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def unbounded() -> Iterator[None]:
    """Run the block with no deadline: work that a request starts on behalf of every later one
    (building the nearby index when the start-up build failed) must be let finish, or no
    request ever gets it done."""
    token = _deadline.set(None)
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def outside() -> Iterator[None]:
    """Time the block spends does not count against the request's deadline: a call to another
    service (the payment provider), bounded by its own timeout, which would otherwise leave
    the database work after it no time. The deadline moves on by the block's duration."""
    deadline = _deadline.get()
    if deadline is None:
        yield
        return
    started = time.monotonic()
    try:
        yield
    finally:
        _deadline.set(deadline + (time.monotonic() - started))


def queued_s(sock: socket.socket) -> float:
    """Seconds since the request's last byte reached this host: the time it waited in the listen
    backlog and gunicorn's queue. 0 where the kernel does not say (not Linux, not TCP)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES)
    except (AttributeError, OSError):
        return 0.0
    if len(info) < _LAST_DATA_RECV_OFFSET + _LAST_DATA_RECV.size:
        return 0.0
    return float(_LAST_DATA_RECV.unpack_from(info, _LAST_DATA_RECV_OFFSET)[0]) / 1000


def client_gone(sock: socket.socket) -> bool:
    """Whether the client has closed its end: a non-blocking peek reads end-of-file.

    A client that half-closes (shuts down writing) and still waits for the answer looks gone
    too; HTTP clients do not do that.
    """
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read: still connected, waiting for the answer
    except ConnectionError:
        return True  # reset by the client
    except (OSError, ValueError):  # TLS sockets take no flags; a closed socket is gunicorn's to report
        return False


class Deadlines:
    """WSGI middleware: skip requests nobody waits for, give the others their deadline."""

    def __init__(self, app: WsgiApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.timeout_s <= 0:
            return self.app(environ, start_response)
        sock = environ.get("gunicorn.socket")
        waited_s = 0.0
        if sock is not None:
            # The path only: query strings carry user positions.
            what = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
            if client_gone(sock):
                metrics.REQUESTS_SKIPPED.labels("client_gone").inc()
                log.debug("skipped %s: the client has gone", what)
                # 499 (nginx's "client closed request") for the access log; nobody reads it.
                start_response(
                    "499 Client Closed Request", [("Content-Length", "0"), ("Connection", "close")]
                )
                return []
            waited_s = queued_s(sock)
            if waited_s >= self.timeout_s:
                metrics.REQUESTS_SKIPPED.labels("queued_past_deadline").inc()
                log.debug("skipped %s: queued %.3f s, past its deadline", what, waited_s)
                return _problem(start_response, DeadlineExceeded(
                    f"the request waited {waited_s:.1f} s for a free worker, past its deadline of "
                    f"{self.timeout_s:g} s; retry later"
                ))  # fmt: skip
        with within(self.timeout_s - waited_s):
            return self.app(environ, start_response)


def _problem(start_response: StartResponse, error: DeadlineExceeded) -> list[bytes]:
    body = json.dumps(error.to_problem()).encode()
    headers = [
        ("Content-Type", "application/problem+json"),
        ("Content-Length", str(len(body))),
        *error.headers.items(),
    ]
    start_response(f"{error.status} Service Unavailable", headers)
    return [body]
