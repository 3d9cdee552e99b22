"""The gunicorn servers of benchmarks/http_load.py: started, ready, settled, measured, stopped."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

START_TIMEOUT_S = 300.0  # a worker builds its index from 1M merchants before it answers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """One request on a fresh connection; status 0 when it failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def workers(self) -> list[psutil.Process]:
        try:
            children: list[psutil.Process] = psutil.Process(self.process.pid).children()
            return children
        except psutil.Error:
            return []

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, n: int = 3000) -> str:
        return self.log_text()[-n:]

    def connections(self) -> dict[int, int]:
        """Established client connections per worker: gunicorn's workers accept on their own,
        and a keep-alive client stays with the worker that accepted it."""
        found: dict[int, int] = {}
        for proc in self.workers():
            try:
                sockets = proc.net_connections(kind="tcp")
            except psutil.Error:
                continue
            found[proc.pid] = sum(
                1
                for c in sockets
                if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == self.port
            )
        return found


@contextmanager
def running(name: str, command: list[str], cwd: Path, env: dict[str, str], port: int,
            ready_path: str, log: Path) -> Iterator[Server]:  # fmt: skip
    """A gunicorn started, answered 200 on ready_path, settled, and always stopped with SIGTERM."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, port, process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while get(port, ready_path, timeout=5)[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not become ready (exit {process.poll()}):\n{server.log_tail()}")
            time.sleep(0.2)
        settle(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)  # gunicorn: graceful, workers finish their requests
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def settle(server: Server, timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait until no worker uses CPU: /readyz answered from one worker while another may still
    be building its index."""
    deadline = time.monotonic() + timeout_s
    last: dict[int, float] = {}
    while time.monotonic() < deadline:
        now: dict[int, float] = {}
        for proc in server.workers():
            try:
                times = proc.cpu_times()
                now[proc.pid] = times.user + times.system
            except psutil.Error:
                pass
        if last and now.keys() == last.keys() and all(now[p] - last[p] < 0.05 for p in now):
            return
        last = now
        time.sleep(1.0)


def memory(server: Server) -> list[tuple[float, float]]:
    """(RSS, PSS) in MB per worker: PSS counts pages shared between workers once."""
    found = []
    for proc in server.workers():
        try:
            info = proc.memory_full_info()
            found.append((info.rss / 2**20, info.pss / 2**20))
        except psutil.Error:
            pass
    return found


def drain(server: Server, timeout_s: float = 300.0) -> float:
    """Seconds until the server answers /healthz within 0.2 s: gunicorn keeps working on
    requests whose client has gone, and they must not count against the next case."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        began = time.monotonic()
        status, _ = get(server.port, "/healthz", timeout=timeout_s)
        if status == 200 and time.monotonic() - began < 0.2:
            break
        time.sleep(0.5)
    return time.monotonic() - started
