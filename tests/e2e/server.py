"""A real multi-worker gunicorn running lbs, with an access log that names the worker of each request."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
TAG_HEADER = "X-Lbs-Test-Request"
START_TIMEOUT_S = 90.0
# A fixed key: without one, the workers would create lbs-secret.key in the checkout.
E2E_SECRET_KEY = "lbs-e2e-secret-key-0123456789abcdef"
STOP_TIMEOUT_S = 20.0


@dataclass
class Server:
    base_url: str
    access_log: Path
    error_log: Path
    master_pid: int = 0
    # The application's own log (standard error: lbs.app's logging.basicConfig).
    app_log: Path | None = None

    def get(
        self, path: str, tag: str, headers: Mapping[str, str] | None = None, **kwargs: object
    ) -> requests.Response:
        """One request on a fresh connection (no keep-alive), tagged for the access log."""
        headers = {"Connection": "close", TAG_HEADER: tag, **(headers or {})}
        return requests.get(self.base_url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def send(self, method: str, path: str, tag: str, headers: dict[str, str], json: Any) -> requests.Response:
        headers = {"Connection": "close", TAG_HEADER: tag, **headers}
        return requests.request(method, self.base_url + path, headers=headers, json=json, timeout=30)

    def post(
        self, path: str, tag: str, headers: Mapping[str, str] | None = None, json: Any = None
    ) -> requests.Response:
        """One POST on a fresh connection, tagged for the access log."""
        return self.send("POST", path, tag, dict(headers or {}), json)

    def worker_of(self) -> dict[str, int]:
        """Tag -> pid of the worker that answered, from the access log lines written so far."""
        if not self.access_log.exists():
            return {}
        workers = {}
        for line in self.access_log.read_text().splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3:  # a line still being written is picked up by the next read
                workers[parts[2]] = int(parts[0].strip("<>"))
        return workers

    def wait_for_log(self, tags: list[str], timeout_s: float = 15.0) -> dict[str, int]:
        """Gunicorn logs a request after sending its response: poll until every tag is there."""
        deadline = time.monotonic() + timeout_s
        while True:
            workers = self.worker_of()
            if all(tag in workers for tag in tags):
                return workers
            if time.monotonic() > deadline:
                raise AssertionError(f"access log lacks {[t for t in tags if t not in workers][:5]}")
            time.sleep(0.05)

    def wait_for_workers(self, n: int, timeout_s: float = 60.0) -> set[int]:
        """Send /healthz until n distinct workers have answered (each worker boots on its own)."""
        deadline = time.monotonic() + timeout_s
        rounds = itertools.count()
        while True:
            tags = [f"workers-{next(rounds)}-{i}" for i in range(4 * n)]
            with ThreadPoolExecutor(max_workers=2 * n) as pool:
                assert all(r.status_code == 200 for r in pool.map(lambda t: self.get("/healthz", t), tags))
            served_by = self.wait_for_log(tags)
            pids = {served_by[tag] for tag in tags}
            if len(pids) >= n:
                return pids
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(pids)} of {n} workers answered within {timeout_s} s")
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(
    database_url: str,
    directory: Path,
    operator_token_sha256: str,
    workers: int = 3,
    refresh_s: float = 1.0,
    env: Mapping[str, str] | None = None,
    serving_config: bool = False,
) -> Iterator[Server]:
    """Start gunicorn on a free port, wait for /readyz, and always stop it afterwards.

    ``env`` adds or overrides LBS_* settings of the workers (e.g. LBS_RATE_LIMIT_CLAIM), or
    sets PROMETHEUS_MULTIPROC_DIR. ``serving_config``: with `lbs serve`'s settings
    (lbs/gunicorn_conf.py: preloaded app, LBS_THREADS threads), the options below winning.
    """
    port = free_port()
    logs = [directory / name for name in ("access.log", "gunicorn.log", "app.log")]
    server = Server(f"http://127.0.0.1:{port}", logs[0], logs[1], app_log=logs[2])
    environ = {
        **os.environ,
        "LBS_DATABASE_URL": database_url,
        "LBS_SECRET_KEY": E2E_SECRET_KEY,
        "LBS_INDEX_REFRESH_S": str(refresh_s),
        "LBS_OPERATOR_TOKEN_SHA256": operator_token_sha256,
    }
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ.update(env or {})
    config = ["--config", "python:lbs.gunicorn_conf"] if serving_config else []
    command = [
        sys.executable, "-m", "gunicorn", *config,
        "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}",
        "--access-logfile", str(server.access_log),
        "--access-logformat", f"%(p)s %(s)s %({{{TAG_HEADER.lower()}}}i)s",
        "--error-logfile", str(server.error_log),
        "--graceful-timeout", "5",
        "lbs.app:create_app()",
    ]  # fmt: skip
    assert server.app_log is not None
    with server.app_log.open("wb") as app_log:
        process = subprocess.Popen(command, cwd=REPO, env=environ, stdout=subprocess.DEVNULL, stderr=app_log)
    server.master_pid = process.pid
    try:
        _wait_until_ready(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def _wait_until_ready(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = server.error_log.read_text() if server.error_log.exists() else ""
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log[-3000:]}")
        try:
            if server.get("/readyz", "ready-check").status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn not ready within {START_TIMEOUT_S} s")
