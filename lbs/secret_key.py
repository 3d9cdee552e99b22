"""The service's secret key: from LBS_SECRET_KEY, else a file the first process creates."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from lbs.config import Settings


def load_secret_key(settings: Settings) -> bytes:
    """Every worker of one deployment gets the same key.

    The file appears complete or not at all: it is written aside, then hard-linked into
    place, which fails if another process got there first (and then its key is read).
    """
    if settings.secret_key:
        if len(settings.secret_key) < 32:
            raise ValueError("LBS_SECRET_KEY must have at least 32 characters")
        return settings.secret_key.encode()
    path = Path(settings.secret_key_file).absolute()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(dir=path.parent, prefix=".lbs-secret-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32) + "\n")
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the secret key must have at least 32 characters")
    return key.encode()
