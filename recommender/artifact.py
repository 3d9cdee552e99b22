"""A model on disk: one versioned .npz per training run, and a CURRENT pointer.

save() writes ``model-<version>.npz`` under a temporary name and renames it into place,
then does the same for ``CURRENT`` (the file name of the newest model): a reader sees
either the old model or the new one, never half of one. No pickle: arrays, the ranker
as LightGBM's text, and the metadata as JSON.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
from scipy.sparse import csr_matrix

from recommender.als import AlsModel, AlsParams
from recommender.model import Model
from recommender.ranker import Ranker, RankerParams
from recommender.signals import Signals

FORMAT = 1
POINTER = "CURRENT"


class ArtifactError(ValueError):
    """A model file that is missing, unreadable or of another format."""


def _write_atomically(path: Path, write: Any) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _sparse(prefix: str, matrix: csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_data": matrix.data,
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
        f"{prefix}_shape": np.asarray(matrix.shape),
    }


def _unsparse(arrays: Any, prefix: str) -> csr_matrix:
    shape = tuple(int(n) for n in arrays[f"{prefix}_shape"])
    matrix = csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]), shape=shape
    )
    matrix.has_sorted_indices = True
    return matrix


def save(model: Model, directory: Path, now: datetime | None = None) -> Path:
    """Write the model as the newest version in ``directory``; returns its path."""
    created = (now or datetime.now(UTC)).astimezone(UTC)
    version = f"{created:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    meta = {
        **model.meta,
        "format": FORMAT,
        "version": version,
        "created_at": created.isoformat(),
        "als": model.signals.als.describe(),
        "ranker": model.ranker.describe(),
    }
    signals = model.signals
    arrays: dict[str, Any] = {
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "ranker": np.frombuffer(model.ranker.to_text().encode(), dtype=np.uint8),
        "user_ids": model.user_ids,
        "item_ids": model.item_ids,
        "popularity": signals.popularity,
        "newcomers": signals.newcomers,
        "hours": signals.hours,
        "user_factors": signals.als.user_factors,
        "item_factors": signals.als.item_factors,
        **_sparse("transitions", signals.transitions),
        **_sparse("first_transitions", signals.first_transitions),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"model-{version}.npz"
    _write_atomically(path, lambda out: np.savez(out, **arrays))
    _write_atomically(directory / POINTER, lambda out: out.write(path.name.encode() + b"\n"))
    return path


def current(directory: Path) -> Path | None:
    """The newest model's path, or None before the first training."""
    try:
        name = (directory / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    return directory / name if name else None


def load(path: Path) -> Model:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            meta = json.loads(arrays["meta"].tobytes())
            if meta.get("format") != FORMAT:
                raise ArtifactError(f"{path.name}: format {meta.get('format')!r}, expected {FORMAT}")
            # A parameter added since the file was written keeps its default.
            als_params = AlsParams(
                **{k: v for k, v in meta["als"].items() if k in AlsParams.__dataclass_fields__}
            )
            ranker_params = RankerParams(
                **{k: v for k, v in meta["ranker"].items() if k in RankerParams.__dataclass_fields__}
            )
            signals = Signals(
                popularity=arrays["popularity"],
                newcomers=arrays["newcomers"],
                transitions=_unsparse(arrays, "transitions"),
                first_transitions=_unsparse(arrays, "first_transitions"),
                hours=arrays["hours"],
                als=AlsModel(arrays["user_factors"], arrays["item_factors"], als_params),
            )
            ranker = Ranker.from_text(arrays["ranker"].tobytes().decode(), ranker_params)
            return Model(signals, ranker, arrays["user_ids"], arrays["item_ids"], meta)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, lightgbm.basic.LightGBMError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"{path}: not a readable model ({type(exc).__name__}: {exc})") from exc
