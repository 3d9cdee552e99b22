"""A worker keeps the merchant rows it shows: read once, as fresh as its index, on both databases."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from lbs.config import Settings
from lbs.services.live_index import LiveIndex
from lbs.services.merchant_cache import MerchantCache
from lbs.services.merchants import MerchantChanges, public_merchants, update_merchant
from tests.factories import NOW, merchant, seed

CENTRE = (47.3769, 8.5417)


def merchant_reads(engine: Engine) -> list[str]:
    """Statements reading the merchants table, from now on."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        if "FROM merchants" in str(args[2]):
            seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    return seen


def test_rows_are_read_once_and_equal_the_databases(engine: Engine) -> None:
    rows = seed(engine, [merchant(f"m{i}", CENTRE[0] + i * 1e-4, CENTRE[1]) for i in range(5)])
    ids = [r.id for r in rows]
    cache = MerchantCache(capacity=100)
    reads = merchant_reads(engine)
    with Session(engine) as session:
        first = cache.get(session, ids[:3])
        second = cache.get(session, ids)
        third = cache.get(session, [*ids, 999_999])
        truth = public_merchants(session, ids)
    assert first == {i: truth[i] for i in ids[:3]}
    assert second == third == truth  # an unknown id is left out, as public_merchants does
    assert len(reads) == 1 + 1 + 1 + 1  # 3 rows, then the 2 others, then the unknown one, then the truth


def test_the_least_recently_shown_go_first_when_full(engine: Engine) -> None:
    ids = [r.id for r in seed(engine, [merchant(f"m{i}", *CENTRE) for i in range(4)])]
    cache = MerchantCache(capacity=2)
    with Session(engine) as session:
        cache.get(session, ids[:2])
        cache.get(session, ids[:1])  # ids[0] is now the most recent
        cache.get(session, ids[2:3])
        reads = merchant_reads(engine)
        cache.get(session, ids[:1])
        assert reads == []
        cache.get(session, ids[1:2])
        assert len(reads) == 1
    assert len(cache) == 2


def test_a_write_seen_by_the_index_poll_is_shown(engine: Engine) -> None:
    (row,) = seed(engine, [merchant("before", *CENTRE)])
    live = LiveIndex(Settings().resolutions, refresh_s=0.0, cached_merchants=100)
    with Session(engine) as session:
        live.load(session)
        assert live.public_merchants(session, [row.id])[row.id]["name"] == "before"
    with Session(engine) as session, session.begin():
        update_merchant(session, row.id, MerchantChanges(name="after", price_level=3), NOW, by_operator=True)
    with Session(engine) as session:
        assert live.public_merchants(session, [row.id])[row.id]["name"] == "before"  # not polled yet
        live.refresh_if_due(session)
        shown = live.public_merchants(session, [row.id])[row.id]
        assert shown == {**public_merchants(session, [row.id])[row.id], "rating": None}
    assert (shown["name"], shown["price_level"]) == ("after", 3)


def test_a_row_read_before_a_drop_is_not_kept(engine: Engine) -> None:
    """A request that read a row, then saw it dropped by a poll before storing it, may hold the
    row as it was before the write: it answers with it, but does not keep it."""
    (row,) = seed(engine, [merchant("before", *CENTRE)])
    cache = MerchantCache(capacity=100)
    read, dropped = threading.Event(), threading.Event()

    def drop_while_reading(*args: Any) -> None:
        if "FROM merchants" in str(args[2]) and not read.is_set():
            read.set()
            threading.Thread(target=lambda: (cache.drop([row.id]), dropped.set())).start()
            assert dropped.wait(5)

    event.listen(engine, "after_cursor_execute", drop_while_reading)
    with Session(engine) as session:
        assert cache.get(session, [row.id])[row.id]["name"] == "before"
    event.remove(engine, "after_cursor_execute", drop_while_reading)
    assert len(cache) == 0


def test_kept_rows_are_given_out_as_fresh_dicts(engine: Engine) -> None:
    """A caller that changes what it got (a page adding a field) changes nothing kept."""
    ids = [r.id for r in seed(engine, [merchant(f"m{i}", *CENTRE) for i in range(2)])]
    cache = MerchantCache(capacity=100)
    with Session(engine) as session:
        for got in cache.get(session, ids).values():
            got["name"] = "changed"
        kept, truth = cache.get(session, ids), public_merchants(session, ids)
    assert kept == truth
    assert [list(kept[i]) for i in ids] == [list(truth[i]) for i in ids]  # the same keys, in order
