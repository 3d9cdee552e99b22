"""The event log range-partitioned by occurred_at on PostgreSQL, its partitions kept by pg_partman.

Opt-in (`lbs db partition-events`, docs/scaling.md): the models and migrations describe
one plain `events` table, which is what SQLite and a fresh PostgreSQL database keep. The
conversion rewrites the table once, in one transaction (the table is locked meanwhile);
running the command again only asks pg_partman for the partitions ahead of now.

What partitioning changes: a unique index of a partitioned table must contain the
partition key, so the primary key becomes (id, occurred_at) and the clients' dedup key
(user_id, client_event_id) becomes (user_id, client_event_id, occurred_at). Ids still
come from the one sequence, so they stay unique and keep log order. A client resending an
event sends the same occurred_at and is still caught by the index; one resending the same
id with another time is caught by ingest_client_events' look-up of the ids it has already
stored, which reads every partition, and escapes only if both copies arrive at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

INTERVALS = ("weekly", "monthly")
# pg_partman keeps this many partitions made ahead of the current one (its default).
PREMAKE = 4


class PartitioningUnavailable(Exception):
    """The database cannot hold partitioned events: not PostgreSQL, or pg_partman is missing."""


@dataclass(frozen=True)
class PartitionReport:
    converted: bool  # this call turned the plain table into a partitioned one
    rows_moved: int
    partitions: int  # not counting the default partition
    rows_in_default: int  # rows no partition's range holds: maintenance has fallen behind
    seconds: float


def is_partitioned(connection: Connection) -> bool:
    kind = connection.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')")
    ).scalar_one_or_none()
    return kind == "p"


def partition_events(engine: Engine, interval: str = "monthly", premake: int = PREMAKE) -> PartitionReport:
    """Partition the event log by occurred_at (once), and make the partitions ahead of now."""
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r}: expected one of {', '.join(INTERVALS)}")
    if engine.dialect.name != "postgresql":
        raise PartitioningUnavailable(
            "events are partitioned on PostgreSQL only; SQLite keeps one table (LBS_DATABASE_URL)"
        )
    started = time.perf_counter()
    with engine.begin() as connection:
        # Partition bounds and names follow the session's zone: UTC weeks and months.
        connection.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
        _create_extension(connection)
        parent = connection.execute(text("SELECT current_schema() || '.events'")).scalar_one()
        converted = not is_partitioned(connection)
        moved = _convert(connection, parent, interval, premake) if converted else 0
        if not converted:
            managed = connection.execute(
                text("SELECT count(*) FROM partman.part_config WHERE parent_table = :parent"),
                {"parent": parent},
            ).scalar_one()
            if not managed:
                raise PartitioningUnavailable(f"{parent} is partitioned, but not by pg_partman")
            connection.execute(text("SELECT partman.run_maintenance(:parent)"), {"parent": parent})
        partitions = connection.execute(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass('events')")
        ).scalar_one()
        in_default = connection.execute(text("SELECT count(*) FROM events_default")).scalar_one()
    return PartitionReport(converted, moved, partitions - 1, in_default, time.perf_counter() - started)


def _create_extension(connection: Connection) -> None:
    available = connection.execute(
        text("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_partman'")
    ).scalar_one()
    if not available:
        raise PartitioningUnavailable(
            "pg_partman is not installed on the database server (Debian: apt-get install "
            "postgresql-15-partman)"
        )
    connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS partman")
    connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")


def _convert(connection: Connection, parent: str, interval: str, premake: int) -> int:
    """Rename the plain table, create the partitioned one under its name, copy, drop the old."""
    connection.exec_driver_sql("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    first = connection.exec_driver_sql("SELECT min(occurred_at) FROM events").scalar_one()
    connection.exec_driver_sql("ALTER TABLE events RENAME TO events_unpartitioned")
    # The id sequence outlives the old table and numbers the new one from where it was.
    connection.exec_driver_sql("ALTER SEQUENCE events_id_seq OWNED BY NONE")
    connection.exec_driver_sql(
        "CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (occurred_at)"
    )
    connection.execute(
        text(
            "SELECT partman.create_parent(:parent, 'occurred_at', 'native', :interval, "
            "p_premake := :premake, p_start_partition := :start)"
        ),
        {
            "parent": parent,
            "interval": interval,
            "premake": premake,
            "start": None if first is None else str(first),
        },
    )
    moved = connection.exec_driver_sql("INSERT INTO events SELECT * FROM events_unpartitioned").rowcount
    connection.exec_driver_sql("DROP TABLE events_unpartitioned")
    connection.exec_driver_sql("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    # Built after the copy (faster than maintaining them row by row), on the parent, so
    # every partition pg_partman makes later gets them too.
    connection.exec_driver_sql("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id, occurred_at)")
    connection.exec_driver_sql(
        "ALTER TABLE events ADD CONSTRAINT events_client_id UNIQUE (user_id, client_event_id, occurred_at)"
    )
    connection.exec_driver_sql("CREATE INDEX ix_events_user_time ON events (user_id, occurred_at)")
    connection.exec_driver_sql(
        "CREATE INDEX ix_events_merchant_kind_time ON events (merchant_id, kind, occurred_at)"
    )
    connection.exec_driver_sql("ANALYZE events")
    return moved
