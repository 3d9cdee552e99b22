"""A database that stops answering (issue 16, defect 7): requests end by their deadline with a
503, /readyz says "not ready" within a second, and both recover by themselves once it answers.

PostgreSQL behind tests/freezing_proxy.py: frozen, it accepts and holds connections but
forwards nothing, as a server stopped with SIGSTOP does (the machine's shared server is
never stopped). Before the watchdog (lbs/db_watchdog.py) each of these requests waited for
as long as the freeze lasted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import make_url

from lbs.db_watchdog import WATCHDOG
from tests.freezing_proxy import freezing_proxy
from tests.problems import assert_problem

pytestmark = pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgis)])

TIMEOUT_S = 1.0


def timed(call: Callable[[], Any]) -> Callable[[], tuple[Any, float]]:
    def run() -> tuple[Any, float]:
        began = time.monotonic()
        response = call()
        return response, time.monotonic() - began

    return run


def test_a_frozen_database_is_a_fast_503_and_recovery_needs_no_restart(
    database_url: str, make_app: Callable[..., OpenAPI]
) -> None:
    url = make_url(database_url)
    with freezing_proxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        client: FlaskClient = make_app(database_url=proxied, request_timeout_s=TIMEOUT_S).test_client()
        assert client.post("/v1/users").status_code == 201  # a pooled connection, through the proxy
        cut_before = WATCHDOG.cut

        proxy.freeze()
        pool = ThreadPoolExecutor(2)
        try:
            write = pool.submit(timed(lambda: client.post("/v1/users")))
            time.sleep(0.1)  # the write holds the pooled connection: /readyz must connect
            ready = pool.submit(timed(lambda: client.get("/readyz")))
            (written, write_s), (readiness, ready_s) = write.result(timeout=15), ready.result(timeout=15)
        finally:
            proxy.thaw()  # first: a request still waiting on the proxy then ends, and the pool with it
            pool.shutdown()

        assert_problem(written, 503)
        assert write_s < 2 * TIMEOUT_S + 0.5, f"the write answered after {write_s:.1f} s"
        assert WATCHDOG.cut > cut_before  # the held connection was cut, not waited on
        assert_problem(readiness, 503)
        assert ready_s < 1.0, f"/readyz answered after {ready_s:.1f} s"

        deadline = time.monotonic() + 10  # thawed: the pool reconnects on its own
        while (status := client.post("/v1/users").status_code) != 201 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 201
        assert client.get("/readyz").status_code == 200
