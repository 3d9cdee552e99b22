"""A model on disk: one versioned directory per training run, and a CURRENT pointer.

save() writes ``model-<version>/`` (meta.json, ranker.txt and one .npy per array) under a
hidden temporary name, syncs it and renames it into place, then does the same for
``CURRENT`` (the name of the newest model): a reader sees the old model or the new one,
never half of one, and a directory CURRENT has never named is never read. No pickle:
arrays, the ranker as LightGBM's text, the metadata as JSON.

load() maps the arrays read-only (numpy memory-maps each .npy): the API's workers share
one copy through the page cache instead of holding one each (a 1M-merchant model is
about 1 GB of arrays), and a worker only pages in what its requests read. Arrays derived
from the fitted ones (unit ALS factors, norms, totals, the id -> column table) are saved
too, so that no worker computes a private copy of them.

A model is bound to the data it was trained on: the caller records an id of that data
in the model's meta (``database_id``; lbs stores one per database) and passes the id of
the data it serves to load(), which refuses a model of other data (ForeignModel), so that
ids of one database never rank the merchants of another.

Format 1 (one .npz, read into memory) still loads; FORMAT names the current one. A model
saved before the items' review ratings were saved beside its signals loads with none (every
average and count 0); its ranker never read them (see ranker.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

import lightgbm
import numpy as np
from scipy.sparse import csr_matrix

from recommender.als import AlsModel, AlsParams
from recommender.model import Model
from recommender.ranker import Ranker, RankerParams
from recommender.ratings import Ratings
from recommender.signals import Signals

FORMAT = 2
POINTER = "CURRENT"
META = "meta.json"
RANKER = "ranker.txt"
_SPARSE = ("transitions", "first_transitions")


class ArtifactError(ValueError):
    """A model that is missing, unreadable or of another format."""


class ForeignModel(ArtifactError):
    """A model trained on other data than the caller serves (or that records none)."""


def _sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_synced(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    with open(path, "wb") as out:
        write(out)
        out.flush()
        os.fsync(out.fileno())


def _write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        _write_synced(Path(temporary), write)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _arrays(model: Model) -> dict[str, np.ndarray]:
    signals = model.signals
    arrays: dict[str, np.ndarray] = {
        "user_ids": model.user_ids,
        "item_ids": model.item_ids,
        "popularity": signals.popularity,
        "newcomers": signals.newcomers,
        "hours": signals.hours,
        "user_factors": signals.als.user_factors,
        "item_factors": signals.als.item_factors,
        "rating_average": signals.ratings.average,
        "rating_count": signals.ratings.count,
        **{f"derived_{name}": array for name, array in signals.derived().items()},
    }
    dense = model.dense_columns
    if dense is not None:
        arrays["dense_columns"] = dense
    for name in _SPARSE:
        matrix: csr_matrix = getattr(signals, name)
        arrays |= {
            f"{name}_data": matrix.data,
            f"{name}_indices": matrix.indices,
            f"{name}_indptr": matrix.indptr,
        }
    return {name: np.ascontiguousarray(array) for name, array in arrays.items()}


def _save_array(out: IO[bytes], array: np.ndarray) -> None:
    np.save(out, array, allow_pickle=False)


def save(model: Model, directory: Path, now: datetime | None = None) -> Path:
    """Write the model as the newest version in ``directory``; returns its path."""
    created = (now or datetime.now(UTC)).astimezone(UTC)
    version = f"{created:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    arrays = _arrays(model)
    meta = {
        **model.meta,
        "format": FORMAT,
        "version": version,
        "created_at": created.isoformat(),
        "als": model.signals.als.describe(),
        "ranker": model.ranker.describe(),
        "ratings": {"prior": model.signals.ratings.prior},
        "arrays": sorted(arrays),
        "shapes": {name: list(getattr(model.signals, name).shape) for name in _SPARSE},
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"model-{version}"
    building = Path(tempfile.mkdtemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        for name, array in arrays.items():
            _write_synced(building / f"{name}.npy", partial(_save_array, array=array))
        _write_synced(building / RANKER, lambda out: out.write(model.ranker.to_text().encode()))
        _write_synced(building / META, lambda out: out.write(json.dumps(meta).encode()))
        _sync_directory(building)
        building.rename(path)
        _sync_directory(directory)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _write_atomically(directory / POINTER, lambda out: out.write(path.name.encode() + b"\n"))
    return path


def current(directory: Path) -> Path | None:
    """The newest model's path, or None before the first training."""
    try:
        name = (directory / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    return directory / name if name else None


def load(path: Path, database_id: str | None = None) -> Model:
    """The model at ``path`` (format 2: arrays memory-mapped; format 1: read into memory).
    With ``database_id``, a model whose meta records another one (or none) is refused:
    ForeignModel, before any array is read."""
    if database_id is not None:
        check_database(path, read_meta(path), database_id)
    try:
        if path.is_dir():
            return _load_directory(path)
        return _load_npz(path)
    except ArtifactError:
        raise
    except (
        OSError,
        KeyError,
        TypeError,
        ValueError,
        zipfile.BadZipFile,
        lightgbm.basic.LightGBMError,
    ) as exc:
        raise ArtifactError(f"{path}: not a readable model ({type(exc).__name__}: {exc})") from exc


def read_meta(path: Path) -> dict[str, Any]:
    """The metadata of the model at ``path``, without its arrays."""
    try:
        if path.is_dir():
            meta = json.loads((path / META).read_text())
        else:
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(stored["meta"].tobytes())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path}: not a readable model ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict):
        raise ArtifactError(f"{path}: not a readable model (its metadata is not an object)")
    return meta


def check_database(path: Path, meta: Mapping[str, Any], database_id: str) -> None:
    """Raise ForeignModel unless the model's meta records ``database_id``."""
    theirs = meta.get("database_id")
    if theirs == database_id:
        return
    if theirs is None:
        raise ForeignModel(
            f"{path.name} records no database (trained before models were bound to theirs); "
            "train one on this database (lbs train)"
        )
    raise ForeignModel(
        f"{path.name} was trained on database {theirs}, not on this one ({database_id}); train one on "
        "this database (lbs train), or point LBS_MODEL_DIR at this database's models"
    )


def _load_directory(path: Path) -> Model:
    meta = json.loads((path / META).read_text())
    if meta.get("format") != FORMAT:
        raise ArtifactError(f"{path.name}: format {meta.get('format')!r}, expected {FORMAT}")
    # Read-only maps; a plain ndarray view of each (its base is the np.memmap), so that
    # results computed from them are ordinary arrays.
    arrays = {
        name: np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False).view(np.ndarray)
        for name in meta["arrays"]
    }
    ranker_text = (path / RANKER).read_text()
    signals = _signals(meta, arrays)
    signals.seed_derived(
        {n.removeprefix("derived_"): a for n, a in arrays.items() if n.startswith("derived_")}
    )
    model = Model(signals, _ranker(meta, ranker_text), arrays["user_ids"], arrays["item_ids"], meta)
    model.seed_dense_columns(arrays.get("dense_columns"))
    return model


def _load_npz(path: Path) -> Model:
    """Format 1: every array in one .npz, read into this process's memory."""
    with np.load(path, allow_pickle=False) as stored:
        meta = json.loads(stored["meta"].tobytes())
        if meta.get("format") != 1:
            raise ArtifactError(f"{path.name}: format {meta.get('format')!r}, expected {FORMAT} or 1")
        arrays = {name: stored[name] for name in stored.files if name not in ("meta", "ranker")}
        ranker_text = stored["ranker"].tobytes().decode()
    meta["shapes"] = {name: [int(n) for n in arrays.pop(f"{name}_shape")] for name in _SPARSE}
    return Model(
        _signals(meta, arrays), _ranker(meta, ranker_text), arrays["user_ids"], arrays["item_ids"], meta
    )


def _signals(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Signals:
    # A parameter added since the model was written keeps its default.
    als_params = AlsParams(**{k: v for k, v in meta["als"].items() if k in AlsParams.__dataclass_fields__})
    n_items = len(arrays["popularity"])
    if "rating_average" in arrays:
        ratings = Ratings(
            arrays["rating_average"], arrays["rating_count"], float(meta.get("ratings", {}).get("prior", 0.0))
        )
    else:  # saved before ratings: none
        ratings = Ratings.empty(n_items)
    return Signals(
        popularity=arrays["popularity"],
        newcomers=arrays["newcomers"],
        transitions=_sparse(arrays, "transitions", meta["shapes"]["transitions"]),
        first_transitions=_sparse(arrays, "first_transitions", meta["shapes"]["first_transitions"]),
        hours=arrays["hours"],
        als=AlsModel(arrays["user_factors"], arrays["item_factors"], als_params),
        ratings=ratings,
    )


def _sparse(arrays: Mapping[str, np.ndarray], prefix: str, shape: list[int]) -> csr_matrix:
    matrix = csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=(int(shape[0]), int(shape[1])),
    )
    matrix.has_sorted_indices = True
    return matrix


def _ranker(meta: Mapping[str, Any], text: str) -> Ranker:
    known = {k: v for k, v in meta["ranker"].items() if k in RankerParams.__dataclass_fields__}
    params = RankerParams(**{**known, "without": tuple(known.get("without", ()))})
    return Ranker.from_text(text, params)
