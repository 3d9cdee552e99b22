"""lbs db partition-events: the event log partitioned by time keeps its rows, ids, dedup and reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from lbs.cli import main
from lbs.event_partitions import PartitioningUnavailable, is_partitioned, partition_events
from lbs.training import read_interactions
from tests.deals_factory import bearer, iso, make_merchant, make_user

POSTGRESQL = [pytest.param("postgresql", marks=pytest.mark.postgis)]


def event(merchant_id: int, event_id: str, occurred_at: datetime, kind: str = "click") -> dict[str, Any]:
    return {"id": event_id, "kind": kind, "merchant_id": merchant_id, "occurred_at": iso(occurred_at)}


def send(client: FlaskClient, token: str, events: list[dict[str, Any]]) -> tuple[int, int]:
    response = client.post("/v1/events", json={"events": events}, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return body["accepted"], body["duplicates"]


def stored(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(text("SELECT * FROM events ORDER BY id")).mappings()]


def feed(client: FlaskClient, key: str) -> list[dict[str, Any]]:
    response = client.get("/v1/merchant/events", headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["items"])


def window(engine: Engine, since: datetime, until: datetime) -> list[tuple[int, int, str, float]]:
    with Session(engine) as session:
        data = read_interactions(session, since, until, ("click", "visit"))
    return sorted(
        zip(data.users.tolist(), data.items.tolist(), data.kinds.tolist(), data.times.tolist(), strict=True)
    )


@pytest.mark.parametrize("db_kind", POSTGRESQL)
def test_partitioning_keeps_rows_ids_dedup_feed_and_the_training_window(
    engine: Engine, client: FlaskClient
) -> None:
    now = datetime.now(UTC)
    merchant_id, key = make_merchant(client)
    _, token = make_user(client)
    # Weeks apart, so that the rows land in different partitions.
    batch = [
        event(merchant_id, "a", now - timedelta(days=20)),
        event(merchant_id, "b", now - timedelta(days=9), kind="visit"),
        event(merchant_id, "c", now),
    ]
    assert send(client, token, batch) == (3, 0)
    rows, feed_before = stored(engine), feed(client, key)
    window_before = window(engine, now - timedelta(days=30), now + timedelta(minutes=1))

    report = partition_events(engine, "weekly")

    assert report.converted and report.rows_moved == 3 and report.rows_in_default == 0
    assert report.partitions >= 4  # three weeks of rows, and pg_partman's weeks ahead
    with engine.connect() as connection:
        assert is_partitioned(connection)
        homes = connection.execute(text("SELECT count(DISTINCT tableoid) FROM events")).scalar_one()
    assert homes == 3
    assert stored(engine) == rows
    assert feed(client, key) == feed_before
    assert window(engine, now - timedelta(days=30), now + timedelta(minutes=1)) == window_before
    # Pruned to the last week, the window still reads what lies in it.
    assert window(engine, now - timedelta(days=2), now + timedelta(minutes=1)) == [
        w for w in window_before if w[3] >= (now - timedelta(days=2)).timestamp()
    ]

    # Resent as they were, or under the same ids at other times: duplicates, stored once.
    assert send(client, token, batch) == (0, 3)
    moved = [{**e, "occurred_at": iso(now - timedelta(days=1))} for e in batch]
    assert send(client, token, moved) == (0, 3)
    assert send(client, token, [event(merchant_id, "d", now)]) == (1, 0)
    after = stored(engine)
    assert len(after) == 4 and after[-1]["id"] > rows[-1]["id"]  # the one sequence goes on
    assert [i["id"] for i in feed(client, key)] == [r["id"] for r in after if r["kind"] == "click"]

    again = partition_events(engine, "weekly")
    assert not again.converted and again.rows_moved == 0 and again.partitions == report.partitions
    assert stored(engine) == after


@pytest.mark.parametrize("db_kind", POSTGRESQL)
def test_an_empty_log_is_partitioned_from_now(engine: Engine) -> None:
    report = partition_events(engine, "monthly", premake=2)

    assert report.converted and report.rows_moved == 0 and report.partitions >= 3
    with engine.connect() as connection:
        connection.exec_driver_sql("SET TimeZone = 'UTC'")
        bounds = (
            connection.execute(
                text(
                    "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass"
                )
            )
            .scalars()
            .all()
        )
    assert f"FROM ('{datetime.now(UTC):%Y-%m}-01 00:00:00+00')" in " ".join(bounds)


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_sqlite_keeps_one_table(engine: Engine) -> None:
    with pytest.raises(PartitioningUnavailable, match="PostgreSQL only"):
        partition_events(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM events")).scalar_one() == 0


def test_an_unknown_interval_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="weekly, monthly"):
        partition_events(engine, "daily")


@pytest.mark.parametrize("db_kind", POSTGRESQL)
def test_the_command_partitions_once_then_maintains(database_url: str) -> None:
    first = CliRunner().invoke(main, ["db", "partition-events"], env={"LBS_DATABASE_URL": database_url})
    assert first.exit_code == 0, first.output
    assert "events partitioned by occurred_at (monthly): 0 rows moved" in first.output

    again = CliRunner().invoke(main, ["db", "partition-events"], env={"LBS_DATABASE_URL": database_url})
    assert again.exit_code == 0, again.output
    assert "already partitioned; maintenance run" in again.output


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_the_command_refuses_sqlite_cleanly(database_url: str) -> None:
    result = CliRunner().invoke(main, ["db", "partition-events"], env={"LBS_DATABASE_URL": database_url})

    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert "not partitioned: events are partitioned on PostgreSQL only" in str(result.exception)
