"""gunicorn's gthread worker, taking a new connection only when it holds no more than the
others: kept-alive connections are then spread evenly over the workers.

With the stock worker, every worker's loop accepts whatever arrives while it is polling, and
a connection stays with the worker that accepted it. A burst of kept-alive connections (a
load balancer's, or a load generator's) then lands mostly on whichever worker happened to
be polling: 31 of 32 on one worker was common at 1M merchants, and that worker's one GIL
then served nearly all the load while the other core idled. Here each worker publishes how
many connections it holds in memory shared by the workers of one master (created before
the fork), and accepts only while it holds no more than the fewest any other live worker
holds: whichever worker holds the fewest is always free to accept, so no client waits on
the rule itself.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

SLOTS = 256  # workers alive at once, old ones included while they stop
# Per slot: the worker's pid (0: free) and the connections it holds. Inherited by every
# worker forked from this master; the master frees the slot of a worker that exits.
_PIDS = multiprocessing.RawArray(ctypes.c_long, SLOTS)
_HELD = multiprocessing.RawArray(ctypes.c_long, SLOTS)
_CLAIM = multiprocessing.Lock()


def release(pid: int) -> None:
    """In the master, when a worker has exited (gunicorn's child_exit hook)."""
    for slot in range(SLOTS):
        if _PIDS[slot] == pid:
            _HELD[slot], _PIDS[slot] = 0, 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user's
    return True


class FairThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    def init_process(self) -> None:
        self.slot = self._claim_slot()
        super().init_process()

    def _claim_slot(self) -> int | None:
        with _CLAIM:
            for slot in range(SLOTS):
                if _PIDS[slot] == 0 or not _alive(_PIDS[slot]):
                    _HELD[slot], _PIDS[slot] = 0, os.getpid()
                    return slot
        return None  # more workers than slots: this one accepts as the stock worker does

    def _fewest(self) -> bool:
        """Whether this worker holds no more connections than any other live worker."""
        if self.slot is None:
            return True
        _HELD[self.slot] = self.nr_conns
        others = [_HELD[s] for s in range(SLOTS) if s != self.slot and _PIDS[s] != 0]
        return not others or self.nr_conns <= min(others)

    def accept(self, listener: Any) -> None:
        if not self._fewest():
            super().set_accept_enabled(False)  # the main loop asks again on its next turn
            return
        super().accept(listener)
        if self.slot is not None:
            _HELD[self.slot] = self.nr_conns

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self._fewest())
