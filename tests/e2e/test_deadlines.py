"""Deadlines through real gunicorn (lbs/gunicorn_conf.py): a request whose database work outlives
its deadline answers 503 problem+json with Retry-After; a request that waited in the queue past
its deadline is answered so at once, without running; a request whose client has gone is
skipped and counted. One worker with one thread, so that requests queue behind each other."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Connection, Engine

from lbs.db import BEGIN_IMMEDIATE
from tests.conftest import OPERATOR, OPERATOR_TOKEN, OPERATOR_TOKEN_SHA256
from tests.e2e.server import Server, gunicorn

pytestmark = pytest.mark.gunicorn

TIMEOUT_S = 1.0
ENV = {
    "LBS_REQUEST_TIMEOUT_S": str(TIMEOUT_S),
    "LBS_THREADS": "1",
    "LBS_RATE_LIMIT_NEW_USERS": "100000/minute",
    "LBS_LOG_LEVEL": "WARNING",
}
PROBLEM_JSON = "application/problem+json"
DEADLINE_EXCEEDED = "https://lbs.dev/problems/deadline-exceeded"
NEARBY = "/v1/nearby?lat=60.17&lon=24.94&radius_m=1000&sort=distance"


def assert_deadline_exceeded(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 503, body[:300]
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["retry-after"] == "1"
    problem = json.loads(body)
    assert problem["type"] == DEADLINE_EXCEEDED and problem["status"] == 503 and problem["detail"]


@contextmanager
def write_lock(engine: Engine) -> Iterator[Connection]:
    """Hold what a new user's INSERT needs, from another connection, until the block ends."""
    with engine.connect() as other:
        if engine.dialect.name == "postgresql":
            other.exec_driver_sql("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        else:  # SQLite: the database's write lock
            other.execution_options(**{BEGIN_IMMEDIATE: True}).exec_driver_sql("SELECT 1")
        yield other
        other.rollback()


def test_a_request_whose_database_work_outlives_its_deadline_answers_503(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    with gunicorn(
        database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=1, env=ENV, serving_config=True
    ) as server:
        with write_lock(engine):
            blocked = server.post("/v1/users", "blocked")
        assert_deadline_exceeded(
            blocked.status_code, {k.lower(): v for k, v in blocked.headers.items()}, blocked.content
        )

        assert server.post("/v1/users", "after").status_code == 201  # nothing left stuck


class RawClient:
    """One HTTP/1.1 request on its own socket, written and read by hand."""

    def __init__(self, server: Server, head: str, body: bytes = b"") -> None:
        host, port = server.base_url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.sendall(head.encode() + body)

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        self.sock.settimeout(30)
        data = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        self.sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def get(server: Server, path: str) -> RawClient:
    return RawClient(server, f"GET {path} HTTP/1.1\r\nHost: lbs\r\nConnection: close\r\n\r\n")


def unread_bytes(server: Server, client: RawClient) -> int | None:
    """Bytes of the client's request that the server has not read yet (from /proc/net/tcp), None
    until the connection is accepted: 0 once a worker thread has taken the request."""
    port = int(server.base_url.rsplit(":", 1)[1])
    client_port = client.sock.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if (local, remote) == (port, client_port):
            return int(fields[4].split(":")[1], 16)
    return None


def skipped(server: Server) -> dict[str, float]:
    text = requests.get(server.base_url + "/metrics", headers=OPERATOR, timeout=30).text
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "lbs_http_requests_skipped_total":
                counts[sample.labels["reason"]] = sample.value
            if sample.name == "lbs_http_requests_total" and sample.labels["route"] == "/v1/nearby":
                counts["nearby_ran"] = counts.get("nearby_ran", 0) + sample.value
    return counts


def test_queued_past_the_deadline_is_answered_without_running_and_gone_clients_are_skipped(
    database_url: str, tmp_path: Path
) -> None:
    with gunicorn(
        database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=1, env=ENV, serving_config=True
    ) as server:
        # The only thread reads a body that comes slowly: everything sent meanwhile queues.
        body = json.dumps({"name": "Slow", "category": "cafe", "lat": 60.17, "lon": 24.94}).encode()
        slow = RawClient(
            server,
            "POST /v1/merchants HTTP/1.1\r\nHost: lbs\r\nConnection: close\r\n"
            f"Authorization: Bearer {OPERATOR_TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n",
            body[:5],
        )
        deadline = time.monotonic() + 30
        while unread_bytes(server, slow) != 0:  # until the worker's thread is reading it
            assert time.monotonic() < deadline, "the worker never took the slow request"
            time.sleep(0.01)
        gone = [get(server, NEARBY) for _ in range(3)]
        for client in gone:
            client.sock.shutdown(socket.SHUT_RDWR)
            client.sock.close()
        queued = get(server, NEARBY)
        time.sleep(TIMEOUT_S + 0.3)  # the queued request's deadline passes while it waits
        slow.sock.sendall(body[5:])

        # The slow request's deadline passed while its body came: it stops before any statement.
        assert_deadline_exceeded(*slow.answer())
        status, headers, answer = queued.answer()
        assert_deadline_exceeded(status, headers, answer)
        assert "waited" in json.loads(answer)["detail"]
        counts = skipped(server)
        assert counts.get("client_gone") == len(gone)
        assert counts.get("queued_past_deadline") == 1
        assert counts.get("nearby_ran", 0) == 0  # none of the four nearby requests ran

        # A request that did not wait is served as usual.
        assert server.get(NEARBY, "fresh").status_code == 200
