"""The secret key: from the environment, else one file that every process of a deployment shares."""

from __future__ import annotations

import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from lbs.config import Settings
from lbs.secret_key import load_secret_key


def _load(path: str) -> bytes:
    return load_secret_key(Settings(secret_key_file=path))


def test_the_first_process_creates_the_file_and_every_other_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "lbs-secret.key"

    with ProcessPoolExecutor(max_workers=4) as pool:
        keys = set(pool.map(_load, [str(path)] * 8))

    assert len(keys) == 1
    key = keys.pop()
    assert len(key) == 64 and path.read_text().strip().encode() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["lbs-secret.key"]  # no drafts left behind


def test_the_environment_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    path = tmp_path / "unused.key"
    assert load_secret_key(Settings(secret_key="k" * 32, secret_key_file=str(path))) == b"k" * 32
    assert not path.exists()
    with pytest.raises(ValueError, match="at least 32"):
        load_secret_key(Settings(secret_key="short"))


def test_a_truncated_key_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "lbs-secret.key"
    path.write_text("too short\n")

    with pytest.raises(ValueError, match="at least 32"):
        _load(str(path))
