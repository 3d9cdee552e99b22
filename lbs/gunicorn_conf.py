"""gunicorn's settings for `lbs serve` (``gunicorn -c python:lbs.gunicorn_conf``): the app loaded
once in the master so that its workers share the nearby index, a connection pool per worker,
and an access log without query strings.

The master builds the index at start (create_app) and forks the workers from it: the index's
arrays are then the master's pages, shared copy-on-write, until a worker changes them; each
worker keeps its own index fresh afterwards (LiveIndex polls), and loads its own model
lazily. gunicorn reads this module once, in the master; settings come from LBS_* variables
(lbs.config), and `lbs serve --bind/--workers` override theirs.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import platform
from typing import Any
from zoneinfo import ZoneInfo

import opening_hours
from prometheus_client import multiprocess
from sqlalchemy import Engine
from threadpoolctl import threadpool_limits

from lbs import gunicorn_worker
from lbs.config import Settings

log = logging.getLogger(__name__)
_settings = Settings.from_env()

wsgi_app = "lbs.app:create_app()"
bind = [_settings.bind]
workers = _settings.workers
worker_class = "lbs.gunicorn_worker.FairThreadWorker"  # gthread, spreading kept-alive connections evenly
threads = _settings.threads
preload_app = True
accesslog = "-"
# The path only (%(U)s): query strings carry user positions.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

# glibc serves an allocation of at least this size with its own mmap, returned to the system
# when freed. Its default threshold starts at 128 KB and rises to the largest such block
# freed (up to 32 MB), after which large temporaries (a lexsort over the index, a whole-city
# cluster answer) come from the heap and its arenas, and their pages stay with the worker:
# ~80 MB a worker after the benchmark's requests (docs/performance.md, fifth pass). Fixed,
# blocks above it always go back; a page's own arrays (under 1 MB) stay on the fast path.
MMAP_THRESHOLD = 4 * 1024 * 1024
M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for this process and those it forks, unless GLIBC_TUNABLES
    sets one already; False where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc" or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, nbytes))


fix_mmap_threshold()  # in the master, before the app loads: the workers inherit it

# Objects that survive the start-up (modules, the index's small Python parts) are frozen
# before the fork: the workers' garbage collections then leave their pages shared instead
# of writing to every object's header (the gc module's recipe for fork without exec). At
# 1 M merchants a worker's first full collection copied 48 MB of the master's pages without.
gc.disable()


def _engine(server: Any) -> Engine | None:
    """The preloaded app's engine (None when the app did not load or is not ours)."""
    runtime = getattr(server.app.callable, "extensions", {}).get("lbs")
    return None if runtime is None else runtime.engine  # type: ignore[no-any-return]


def when_ready(server: Any) -> None:
    """In the master, once the app is loaded and before the first fork."""
    engine = _engine(server)
    if engine is not None:
        engine.dispose()  # the start-up connection: a worker must not inherit its socket
    _build_lazy_tables()
    gc.freeze()


def _build_lazy_tables() -> None:
    """Tables a library builds on first use and only reads afterwards, built once here so that
    the workers share them: opening_hours' country lookup (public holidays, lbs.services.hours)
    is 107 MB of native heap that each worker would otherwise build on its first nearby query."""
    helsinki = ZoneInfo("Europe/Helsinki")
    try:
        opening_hours.OpeningHours(
            "Mo-Fr 09:00-17:00; PH off", timezone=helsinki, coords=(60.17, 24.94), auto_country=True
        )
    except Exception as exc:  # only memory is at stake: serve anyway
        log.warning("opening_hours' country tables not built before forking: %s", exc)


def post_fork(server: Any, worker: Any) -> None:
    """In each new worker: a pool of its own; the parent's connections stay the parent's."""
    gc.enable()
    # One thread per native math library call (OpenBLAS, OpenMP): a worker already runs
    # LBS_THREADS requests and the host several workers. OpenBLAS's own threads otherwise
    # spin after each small product (a ranked page's similarities) on cores the other
    # workers and PostgreSQL need.
    threadpool_limits(1)
    engine = _engine(server)
    if engine is not None:
        engine.dispose(close=False)  # SQLAlchemy's recipe for a pool inherited across fork


def child_exit(server: Any, worker: Any) -> None:
    """prometheus_client's multiprocess mode: a dead worker's live gauges are dropped."""
    gunicorn_worker.release(worker.pid)  # its connections no longer count
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
