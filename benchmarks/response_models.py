"""What writing a page through its response model costs, against writing it with orjson
(how the nearby and map views wrote their bodies before issue 16's defect 9), in the same
run, on the same bodies.

    .venv/bin/python benchmarks/response_models.py          # a synthetic city in a temp dir

Bodies are real pages: a synthetic city (`lbs seed synthetic`) in SQLite, the app's own
nearby and map views asked through Flask's test client with response writing switched off
(flask-openapi3's validate_response), their JSON parsed back into the dicts the views
return. Then, per page: orjson.dumps(body) (the peer) and the model's validate + dump
(lbs.api.responses.serve's work), best of several rounds. The ratio is the price of one
source of truth per shape, in microseconds per page, beside a request's whole CPU cost
(3.6 ms for a 1 km distance page in docs/performance.md's seventh pass).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
CENTRE = (60.1699, 24.9384)
NEARBY = "/v1/nearby?lat={lat}&lon={lon}&sort=distance"
CASES: list[tuple[str, str, str]] = [
    ("nearby, 20 items", NEARBY + "&radius_m=3000&limit=20", "NearbyPageOut"),
    ("nearby, 100 items", NEARBY + "&radius_m=5000&limit=100", "NearbyPageOut"),
    ("nearby GeoJSON, 20", NEARBY + "&radius_m=3000&limit=20&format=geojson", "NearbyCollectionOut"),
    ("map box, 100", "/v1/merchants?bbox=24.90,60.15,24.98,60.19&limit=100", "MerchantCollectionOut"),
]


def best_us(call: Callable[[], Any], rounds: int = 7, repeat: int = 200) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        for _ in range(repeat):
            call()
        best = min(best, (time.perf_counter() - began) / repeat)
    return best * 1e6


def main() -> None:
    from lbs.api import schemas
    from lbs.app import create_app

    with tempfile.TemporaryDirectory(prefix="lbs-response-models-") as tmp:
        url = f"sqlite:///{tmp}/city.sqlite3"
        env = {**os.environ, "LBS_DATABASE_URL": url}
        lbs = [str(Path(sys.executable).parent / "lbs")]
        subprocess.run([*lbs, "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*lbs, "seed", "synthetic", "--merchants", "20000"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        app = create_app({"database_url": url, "secret_key": "bench-" + "0" * 32})
        app.validate_response = False  # type: ignore[attr-defined]  # the views' own bodies, as dicts
        client = app.test_client()
        print("| page | bytes | orjson µs | through the model µs | ratio | added µs |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for label, path, model_name in CASES:
            response = client.get(path.format(lat=CENTRE[0], lon=CENTRE[1]))
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            body = orjson.loads(response.get_data())
            model: type[BaseModel] = getattr(schemas, model_name)
            peer = best_us(lambda body=body: orjson.dumps(body))
            ours = best_us(
                lambda body=body, model=model: model.model_validate(body).model_dump_json(exclude_unset=True)
            )
            size, ratio = len(response.get_data()), ours / peer
            print(f"| {label} | {size:,} | {peer:,.0f} | {ours:,.0f} | {ratio:.1f} x | {ours - peer:,.0f} |")
        app.extensions["lbs"].events.close()
        app.extensions["lbs"].engine.dispose()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
