"""`lbs serve`'s gunicorn settings (lbs/gunicorn_conf.py) share the nearby index: the master
builds it once and forks the workers from it, so a worker holds almost none of it as its own
memory; and /metrics still sums every worker (prometheus_client's multiprocess mode)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from lbs.app import create_app
from lbs.db import BEGIN_IMMEDIATE
from seed import loader
from tests.conftest import OPERATOR, OPERATOR_TOKEN_SHA256, TEST_SECRET_KEY
from tests.e2e.server import gunicorn

pytestmark = pytest.mark.gunicorn

MERCHANTS = 200_000
# Every H3 resolution: an index of ~80 MB at this size, well above what a worker allocates by
# itself while serving (~20 MB), so that a worker holding its own copy cannot pass unseen.
RESOLUTIONS = ",".join(str(r) for r in range(1, 16))
WORKERS = 2
REQUESTS = 40
MB = 1024 * 1024


def array_bytes(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of the numpy arrays reachable from obj (attributes, containers), each once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes) if obj.base is None else array_bytes(obj.base, seen)
    if isinstance(obj, dict):
        return sum(array_bytes(v, seen) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(array_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith("lbs."):
        return sum(array_bytes(v, seen) for v in vars(obj).values())
    return 0


def start_up_bytes(database_url: str) -> int:
    """What the app builds at start: the arrays of the nearby index and of the deal book.
    (Counted, not taken from this process's RSS growth: after a thousand tests the
    allocator reuses freed memory, and the growth understated the index.)"""
    app = create_app(
        test_config={
            "database_url": database_url,
            "secret_key": TEST_SECRET_KEY,
            "h3_resolutions": RESOLUTIONS,
        }
    )
    runtime = app.extensions["lbs"]
    built = array_bytes(runtime.live_index.index) + array_bytes(runtime.deal_book)
    runtime.rate_limits.close()
    runtime.engine.dispose()
    return built


@pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgis)], indirect=True)
def test_workers_share_the_index_the_master_built(engine: Engine, database_url: str, tmp_path: Path) -> None:
    with Session(engine) as session:
        session.connection(execution_options={BEGIN_IMMEDIATE: True})
        loader.load(session, loader.Spec(MERCHANTS, users=0, days=1, seed=7), datetime.now(UTC), b"", print)
        session.commit()
    index = start_up_bytes(database_url)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LBS_H3_RESOLUTIONS": RESOLUTIONS,
        "LBS_LOG_LEVEL": "WARNING",
    }

    with gunicorn(
        database_url, tmp_path, OPERATOR_TOKEN_SHA256, workers=WORKERS, env=env, serving_config=True
    ) as server:
        server.wait_for_workers(WORKERS)
        tags = [f"nearby-{i}" for i in range(REQUESTS)]
        path = "/v1/nearby?lat=60.17&lon=24.94&radius_m=2000&sort=distance"
        with ThreadPoolExecutor(max_workers=4) as pool:
            assert {r.status_code for r in pool.map(lambda t: server.get(path, t), tags)} == {200}
        served_by = server.wait_for_log(tags)

        master = psutil.Process(server.master_pid)
        workers = master.children()
        assert {served_by[t] for t in tags} == {w.pid for w in workers}  # each answered some
        own = {w.pid: w.memory_full_info().uss for w in workers}
        print(f"start-up {index / MB:.0f} MB; master RSS {master.memory_info().rss / MB:.0f} MB; "
              f"workers' own (USS) {[round(u / MB) for u in own.values()]} MB")  # fmt: skip
        assert master.memory_info().rss > index  # the master holds what it built
        for pid, uss in own.items():
            assert uss < index / 2, f"worker {pid} holds {uss / MB:.0f} MB of its own: its own index?"

        # Every worker's requests, whichever worker answers /metrics.
        text = requests.get(server.base_url + "/metrics", headers=OPERATOR, timeout=30).text
        counted = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "lbs_http_requests_total" and sample.labels.get("route") == "/v1/nearby"
        )
        assert counted == REQUESTS
