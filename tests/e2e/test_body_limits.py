"""A body over its endpoint's cap, through real gunicorn: answered 413 from its declared length,
before the client has sent it, and the worker reads none of the rest (issue 16, defect 3: a
300 MB body to POST /v1/events used to be read and parsed whole, growing a worker by 902 MB)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import psutil
import pytest

from lbs.api.bodies import body_limit
from tests.conftest import OPERATOR_TOKEN_SHA256
from tests.e2e.server import gunicorn

pytestmark = pytest.mark.gunicorn

DECLARED = 300 * 2**20
SENT = 256 * 1024  # of the 300 MB: the request's start, then the client waits


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (status line, headers, Content-Length bytes of body) on a kept-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("db_kind", ["sqlite"])  # the cap is the same on either database
def test_a_300_mb_body_is_refused_from_its_length_without_being_read(
    database_url: str, tmp_path: Path
) -> None:
    with gunicorn(database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=1, serving_config=True) as server:
        token = server.post("/v1/users", "user").json()["token"]
        (worker,) = psutil.Process(server.master_pid).children()
        rss_before = worker.memory_info().rss
        host, port = server.base_url.removeprefix("http://").split(":")

        with socket.create_connection((host, int(port)), timeout=10) as sock:
            began = time.monotonic()
            sock.sendall(
                (
                    "POST /v1/events HTTP/1.1\r\nHost: lbs\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Length: {DECLARED}\r\n\r\n"
                ).encode()
                + b"[" * SENT
            )
            status, headers, body = read_response(sock)
            answered_s = time.monotonic() - began

        assert status == 413, body[:300]
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["status"] == 413 and problem["limit_bytes"] == body_limit("events.post_events")
        assert answered_s < 5, f"answered after {answered_s:.1f} s"
        # The worker holds nothing of the body and still serves.
        assert worker.memory_info().rss - rss_before < 32 * 2**20
        assert server.get("/healthz", "after").status_code == 200
