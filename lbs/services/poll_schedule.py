"""When a process's copy of database state (the index, the deal book, visit histories) polls next."""

from __future__ import annotations

import time
from collections.abc import Callable


class PollSchedule:
    """At most every ``every_s`` seconds, and at once after mark_stale() (a write this
    process committed): what bounds how stale a worker's copy can be."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._polled_at = float("-inf")

    def due(self) -> bool:
        return self._clock() - self._polled_at >= self.every_s

    def polled(self) -> None:
        """A poll (or a full load) starts now."""
        self._polled_at = self._clock()

    def mark_stale(self) -> None:
        self._polled_at = float("-inf")
