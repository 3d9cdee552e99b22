"""A query's result as numpy columns: training reads millions of rows at once.

On PostgreSQL the select runs as ``COPY (...) TO STDOUT (FORMAT binary)`` and numpy reads
the rows in place: fixed-width columns make every row the same size, so the stream is one
structured array (1.6 M events in about a second, against 11 s through the ORM). Other
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


class ColumnReadError(RuntimeError):
    """The database sent something other than the fixed-width rows asked for."""


def read_columns(
    session: Session, statement: Select[*tuple[Any, ...]], kinds: Sequence[Kind]
) -> list[np.ndarray]:
    """One array per selected column, of ``kinds`` (utc_seconds: float unix seconds from an
    aware timestamp, as datetime.timestamp() gives). No column may be NULL."""
    if session.get_bind().dialect.name == "postgresql":
        return _copied(session, statement, kinds)
    return _partitioned(session, statement, kinds)


def _copied(
    session: Session, statement: Select[*tuple[Any, ...]], kinds: Sequence[Kind]
) -> list[np.ndarray]:
    connection = session.connection()
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    raw = connection.connection.driver_connection
    assert raw is not None
    buffer = bytearray()
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy:
        for block in copy:
            buffer += block
    return _parsed(bytes(buffer), kinds)


def _parsed(data: bytes, kinds: Sequence[Kind]) -> list[np.ndarray]:
    if not data.startswith(_SIGNATURE):
        raise ColumnReadError("not a binary COPY stream")
    extension = int.from_bytes(data[15:19], "big")
    start = 19 + extension
    fields = [("count", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"length{i}", ">i4"), (f"value{i}", _WIRE[kind])]
    row = np.dtype(fields)
    body = len(data) - start - 2  # the stream ends with a field count of -1
    if body % row.itemsize or data[-2:] != b"\xff\xff":
        raise ColumnReadError("rows of another width than the columns asked for (a NULL?)")
    rows = np.frombuffer(data, dtype=row, count=body // row.itemsize, offset=start)
    widths = [np.dtype(_WIRE[kind]).itemsize for kind in kinds]
    if len(rows) and (
        (rows["count"] != len(kinds)).any()
        or any((rows[f"length{i}"] != w).any() for i, w in enumerate(widths))
    ):
        raise ColumnReadError("rows of another shape than the columns asked for (a NULL?)")
    columns: list[np.ndarray] = []
    for i, kind in enumerate(kinds):
        values = rows[f"value{i}"]
        if kind == "utc_seconds":
            # Exact: integer microseconds to float, one rounding, as datetime.timestamp().
            columns.append((values.astype(np.int64) + _PG_EPOCH_US).astype(np.float64) / 1e6)
        else:
            columns.append(values.astype(kind))
    return columns


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
