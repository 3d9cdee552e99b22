"""A query's result as numpy columns: training reads millions of rows at once.

On PostgreSQL each column comes back as arrays (array_agg, a few million values each)
through ``COPY (...) TO STDOUT (FORMAT binary)``, and numpy reads them in place: a fixed-
width element makes every entry of an array the same size, so an array is one strided
view. A row per COPY message would cost the client 2 s for 1.6 M events in psycopg's
per-message loop; an array per message costs nothing beyond the server's scan. Other
databases go through SQLAlchemy Core a partition at a time. Either way the same select
(with its literal values rendered by SQLAlchemy) decides the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select
from sqlalchemy.orm import Session

Kind = Literal["int16", "int64", "float64", "utc_seconds"]

# Binary COPY's wire type for each kind (big-endian), and its width in bytes.
_WIRE: dict[Kind, str] = {"int16": ">i2", "int64": ">i8", "float64": ">f8", "utc_seconds": ">i8"}
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
# PostgreSQL timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800 * 1_000_000
_PARTITION = 100_000
# Ids per chunk of arrays on PostgreSQL: 12 bytes an int8 value on the wire, well under 1 GB.
_CHUNK_IDS = 4_000_000


class ColumnReadError(RuntimeError):
    """The database sent something other than the fixed-width rows asked for."""


def read_columns(
    session: Session, statement: Select[*tuple[Any, ...]], kinds: Sequence[Kind]
) -> list[np.ndarray]:
    """One array per selected column, of ``kinds`` (utc_seconds: float unix seconds from an
    aware timestamp, as datetime.timestamp() gives), rows in no particular order. The first
    column is an integer key (an id: PostgreSQL's arrays are cut by it); none may be NULL."""
    if session.get_bind().dialect.name == "postgresql":
        return _copied(session, statement, kinds)
    return _partitioned(session, statement, kinds)


def _copied(session: Session, statement: Select[*tuple[Any, ...]], kinds: Sequence[Kind]) -> list[np.ndarray]:
    connection = session.connection()
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    names = [f"c{i}" for i in range(len(kinds))]
    # Chunks by the first column (an id) keep each array under PostgreSQL's 1 GB a value.
    aggregated = (
        f"SELECT {', '.join(f'array_agg({n})' for n in names)} "
        f"FROM ({sql}) AS q({', '.join(names)}) GROUP BY c0 / {_CHUNK_IDS}"
    )
    raw = connection.connection.driver_connection
    assert raw is not None
    blocks = []
    with raw.cursor() as cursor, cursor.copy(f"COPY ({aggregated}) TO STDOUT (FORMAT binary)") as copy:
        blocks = [bytes(block) for block in copy]
    return _parsed(blocks, kinds)


def _parsed(blocks: Sequence[bytes], kinds: Sequence[Kind]) -> list[np.ndarray]:
    """The columns of a binary COPY of one row of arrays per chunk (a message each)."""
    if not blocks or not blocks[0].startswith(_SIGNATURE):
        raise ColumnReadError("not a binary COPY stream")
    header = blocks[0]
    chunks = list(blocks[1:])
    if len(header) > 19 + int.from_bytes(header[15:19], "big"):  # a chunk in the header's message
        chunks.insert(0, header[19 + int.from_bytes(header[15:19], "big") :])
    if not chunks or chunks[-1][-2:] != b"\xff\xff":
        raise ColumnReadError("a binary COPY stream without its end")
    chunks[-1] = chunks[-1][:-2]
    parts: list[list[np.ndarray]] = [[] for _ in kinds]
    for chunk in (c for c in chunks if c):
        if int.from_bytes(chunk[:2], "big", signed=True) != len(kinds):
            raise ColumnReadError("rows of another shape than the columns asked for")
        at = 2
        for i, kind in enumerate(kinds):
            size = int.from_bytes(chunk[at : at + 4], "big", signed=True)
            parts[i].append(_array(chunk[at + 4 : at + 4 + size], kind))
            at += 4 + size
    return [
        np.concatenate(p) if p else np.empty(0, dtype=_dtype(k)) for p, k in zip(parts, kinds, strict=True)
    ]


def _array(data: bytes, kind: Kind) -> np.ndarray:
    """One binary array (array_send: dimensions, a NULL flag, the element type, then a
    length and a value per element) as a column of ``kind``."""
    dimensions, has_null = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
    if has_null:
        raise ColumnReadError("a NULL among the values")
    if dimensions != 1:
        raise ColumnReadError(f"an array of {dimensions} dimensions")
    n = int.from_bytes(data[12:16], "big")
    wire = np.dtype(_WIRE[kind])
    entries = np.frombuffer(data, dtype=np.dtype([("length", ">i4"), ("value", wire)]), count=n, offset=20)
    if (entries["length"] != wire.itemsize).any():
        raise ColumnReadError("values of another width than the columns asked for")
    values = entries["value"]
    if kind == "utc_seconds":
        # Exact: integer microseconds to float, one rounding, as datetime.timestamp().
        return (values.astype(np.int64) + _PG_EPOCH_US).astype(np.float64) / 1e6
    return values.astype(kind)


def _partitioned(
    session: Session, statement: Select[*tuple[Any, ...]], kinds: Sequence[Kind]
) -> list[np.ndarray]:
    parts: list[list[np.ndarray]] = [[] for _ in kinds]
    result = session.execute(statement.execution_options(yield_per=_PARTITION))
    for partition in result.partitions():
        for i, (kind, values) in enumerate(zip(kinds, zip(*partition, strict=True), strict=True)):
            if None in values:
                raise ColumnReadError(f"column {i} has a NULL")
            if kind == "utc_seconds":
                parts[i].append(np.asarray([v.timestamp() for v in values], dtype=np.float64))
            else:
                parts[i].append(np.asarray(values, dtype=kind))
    return [
        np.concatenate(p) if p else np.empty(0, dtype=_dtype(k)) for p, k in zip(parts, kinds, strict=True)
    ]


def _dtype(kind: Kind) -> npt.DTypeLike:
    return np.float64 if kind == "utc_seconds" else kind
