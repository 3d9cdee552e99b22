"""Impressions and clicks that reads produce, written in batches off the request path.

A read used to write its impressions in a transaction of its own (an INSERT and a COMMIT
per GET). Now a read only appends them here; a thread of the worker writes what has
gathered every ``flush_s`` seconds in one transaction. Nothing is lost on a graceful stop:
the process flushes at exit (gunicorn ends a worker with sys.exit, so atexit runs). On a
crash (SIGKILL, power loss) at most the last ``flush_s`` seconds of events are lost. While
the database is unreachable, batches are kept and retried, up to ``max_rows`` events;
beyond that the oldest are dropped and counted (lbs_events_dropped_total).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from lbs import metrics
from lbs.services.events import write_batch

log = logging.getLogger(__name__)


class EventBuffer:
    def __init__(self, sessions: sessionmaker[Session], flush_s: float, max_rows: int) -> None:
        self._sessions = sessions
        self.flush_s = flush_s
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one batch in flight at a time, in order
        self._pending: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopped = False
        atexit.register(self.close)

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (a gunicorn worker forks)
                self._start()
            self._pending.extend(rows)
            self._drop_beyond_cap()
        if self.flush_s <= 0:
            self.flush()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._pending = []  # a parent's rows are the parent's to write
        self._wake = threading.Event()
        self._stopped = False
        if self.flush_s > 0:
            self._thread = threading.Thread(target=self._run, name="lbs-event-buffer", daemon=True)
            self._thread.start()

    def _drop_beyond_cap(self) -> None:
        excess = len(self._pending) - self.max_rows
        if excess > 0:
            del self._pending[:excess]
            metrics.EVENTS_DROPPED.inc(excess)
            log.warning("event buffer full: dropped the %d oldest events", excess)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.flush_s)
            self.flush()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write every pending event now; returns how many were written (0 if the write failed:
        they stay pending)."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            session = self._sessions()
            try:
                write_batch(session, batch)
                session.commit()
            except SQLAlchemyError as exc:
                session.rollback()
                with self._lock:
                    self._pending[:0] = batch
                    self._drop_beyond_cap()
                log.warning("could not write %d events, will retry: %s", len(batch), type(exc).__name__)
                return 0
            finally:
                session.close()
            metrics.EVENTS_WRITTEN.inc(len(batch))
            return len(batch)

    def close(self) -> None:
        """Stop the thread and write what is pending (at exit; again is harmless)."""
        if self._pid != os.getpid():
            return
        self._stopped = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, 2 * self.flush_s))
        self.flush()
