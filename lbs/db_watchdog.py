"""A client-side bound on a request's database connection: a server that stops answering
cannot hold a request past its deadline.

PostgreSQL's statement_timeout, which lbs.db lowers to each request's deadline, is enforced
by the server. A server that is frozen (stopped, swapping to death, cut off by a network
that still acknowledges packets) enforces nothing, and the driver waits on its socket for
as long as that lasts: every request, `/readyz` included, hung for the 20 s the outside
run froze the server (issue 16, defect 7).

So a connection checked out by a request with a deadline is armed: if the request still
holds it at ``deadline + GRACE_SHARE x time left + GRACE_S`` (the grace lets the server's
own timeout answer first, which costs no reconnection), one thread per process shuts the
connection's socket down. The driver's wait then ends with an error on a lost connection:
SQLAlchemy drops the connection and the request answers 503 like any unreachable database.
Checking the connection back in disarms it, under the same lock as the firing, so a
connection is never cut after another request has taken it; so does a statement run
without a deadline (deadline.unbounded: the index build a request may start).
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine, event

from lbs.deadline import time_left_s

log = logging.getLogger(__name__)

GRACE_SHARE = 0.5
GRACE_S = 0.25
_ARMED = "lbs_watchdog_armed"


class Watchdog:
    """Shuts down the sockets of connections held past their time; one thread per process,
    started on first use (after gunicorn's fork, in the worker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Any]] = []  # (when, token, DBAPI connection)
        self._live: set[int] = set()
        self._next_token = 0
        self._pid = 0
        self.cut = 0  # connections cut, for tests and logs

    def arm(self, connection: Any, at: float) -> int:
        """Cut ``connection`` (a psycopg connection) at monotonic time ``at`` unless disarmed."""
        with self._lock:
            if self._pid != os.getpid():  # first use in this process: its own thread
                self._pid = os.getpid()
                self._heap.clear()
                self._live.clear()
                threading.Thread(target=self._run, name="lbs-db-watchdog", daemon=True).start()
            self._next_token += 1
            token = self._next_token
            self._live.add(token)
            heapq.heappush(self._heap, (at, token, connection))
            self._wake.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._lock:
            self._live.discard(token)

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # disarmed
                if not self._heap:
                    self._wake.wait()
                    continue
                at, token, connection = self._heap[0]
                wait_s = at - time.monotonic()
                if wait_s > 0:
                    self._wake.wait(wait_s)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(token)
                self._cut(connection)

    def _cut(self, connection: Any) -> None:
        if connection.closed:
            return  # closed meanwhile: its descriptor may be another socket's by now
        try:
            fd = connection.fileno()
            # A duplicate of the descriptor: shutting it down ends the connection for the
            # driver's own descriptor too, and closing the duplicate leaves that one alone.
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
            self.cut += 1
            log.error("database connection cut: held past its request's deadline, no answer")
        except OSError:
            pass  # already closed


WATCHDOG = Watchdog()


def watch_connections(engine: Engine, watchdog: Watchdog = WATCHDOG) -> None:
    """Arm each connection a request with a deadline checks out from ``engine``'s pool."""

    @event.listens_for(engine, "checkout")
    def _arm(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        left = time_left_s()
        if left is None:
            return  # not a request's (start-up loads, the event buffer): unbounded
        at = time.monotonic() + max(left, 0.0) * (1 + GRACE_SHARE) + GRACE_S
        record.info[_ARMED] = watchdog.arm(dbapi_connection, at)

    def _disarm(record: Any) -> None:
        token = record.info.pop(_ARMED, None)
        if token is not None:
            watchdog.disarm(token)

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        _disarm(record)

    @event.listens_for(engine, "before_cursor_execute")
    def _unbounded(conn: Any, *_statement: Any) -> None:
        if time_left_s() is None:  # work a request must let finish (deadline.unbounded)
            _disarm(conn.connection)

    @event.listens_for(engine, "invalidate")
    def _invalidated(_dbapi_connection: Any, record: Any, _exception: Any) -> None:
        _disarm(record)
