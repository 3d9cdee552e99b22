"""Opening hours at fixed clocks: overnight, 24/7, off, public holidays, DST days, midnight."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lbs.services import hours as hours_module
from lbs.services.hours import hours_at

HELSINKI = ("Europe/Helsinki", 60.1699, 24.9384)


def at_helsinki(expression: str | None, instant: str) -> tuple[bool | None, str | None, str | None]:
    hours = hours_at(expression, *HELSINKI, datetime.fromisoformat(instant))
    public = hours.public()
    return public["open_now"], public["closes_at"], public["next_open_at"]


@pytest.mark.parametrize(
    ("expression", "instant", "expected"),
    [
        # A Wednesday in November (EET, +02:00), asked in UTC.
        ("Mo-Fr 09:00-18:00", "2026-11-25T10:00:00+00:00", (True, "2026-11-25T18:00:00+02:00", None)),
        # Friday night after closing: next Monday.
        ("Mo-Fr 09:00-18:00", "2026-11-27T23:00:00+02:00", (False, None, "2026-11-30T09:00:00+02:00")),
        # Overnight: open on Saturday 00:30 from Friday's range, until 02:00.
        ("Fr-Sa 18:00-02:00", "2026-11-28T00:30:00+02:00", (True, "2026-11-28T02:00:00+02:00", None)),
        ("Fr-Sa 18:00-02:00", "2026-11-28T02:00:00+02:00", (False, None, "2026-11-28T18:00:00+02:00")),
        ("24/7", "2026-11-25T10:00:00+00:00", (True, None, None)),
        ("off", "2026-11-25T10:00:00+00:00", (False, None, None)),
        # Finnish public holidays: Christmas Eve, Christmas Day and St Stephen's Day, then a Sunday.
        (
            "Mo-Fr 09:00-18:00; PH off",
            "2026-12-24T10:00:00+02:00",
            (False, None, "2026-12-28T09:00:00+02:00"),
        ),
        ("Mo-Fr 09:00-18:00", "2026-12-24T10:00:00+02:00", (True, "2026-12-24T18:00:00+02:00", None)),
        # DST ends 2026-10-25 04:00 EEST -> 03:00 EET: 04:30 is after the change, closing at 06:00 EET.
        ("Su 02:00-06:00", "2026-10-25T02:30:00+00:00", (True, "2026-10-25T06:00:00+02:00", None)),
        # DST starts 2026-03-29 03:00 EET -> 04:00 EEST: at 04:30 EEST it closes at 06:00 EEST.
        ("Su 02:00-06:00", "2026-03-29T01:30:00+00:00", (True, "2026-03-29T06:00:00+03:00", None)),
        # No hours, or hours no parser reads: unknown, not closed.
        (None, "2026-11-25T10:00:00+00:00", (None, None, None)),
        ("whenever we feel like it", "2026-11-25T10:00:00+00:00", (None, None, None)),
    ],
)
def test_hours_in_the_merchants_zone(
    expression: str | None, instant: str, expected: tuple[bool | None, str | None, str | None]
) -> None:
    assert at_helsinki(expression, instant) == expected


def test_closing_across_a_dst_change_takes_its_real_length() -> None:
    # Open from 02:00 to 06:00 wall clock on the night clocks go back: 5 real hours.
    hours = hours_at("Su 02:00-06:00", *HELSINKI, datetime.fromisoformat("2026-10-25T00:00:00+00:00"))
    assert hours.open_now is True and hours.closes_at is not None
    assert (hours.closes_at - datetime.fromisoformat("2026-10-25T00:00:00+00:00")).total_seconds() == 4 * 3600


@pytest.mark.parametrize(
    "expression",
    ["Mo-Fr 09:00-18:00; PH off", "Fr-Sa 18:00-02:00", "Su 02:00-06:00", "Mo-Fr 08:00-12:00,13:00-17:00"],
)
def test_answers_kept_between_instants_are_the_answers_at_those_instants(expression: str) -> None:
    """hours_at keeps its last answer per merchant for as long as it holds: asked at instants
    that move forward (as requests do), every answer equals a fresh evaluation."""
    rng = random.Random(expression)
    instant = datetime(2026, 10, 20, tzinfo=UTC)  # through a DST change and Christmas
    while instant < datetime(2026, 12, 31, tzinfo=UTC):
        instant += timedelta(minutes=rng.choice([1, 7, 29, 60, 181]))
        kept = hours_at(expression, *HELSINKI, instant)
        hours_module._latest.clear()
        assert kept == hours_at(expression, *HELSINKI, instant), instant


TALLINN = (59.437, 24.7536)


def test_holidays_are_the_places_own_in_one_zone() -> None:
    """Epiphany (6 January) is a public holiday in Finland, not in Estonia: two merchants
    in the same zone with the same hours, one in each country, differ on it, whichever
    is asked first."""
    epiphany = datetime.fromisoformat("2026-01-06T10:00:00+02:00")
    expression = "Mo-Fr 09:00-18:00; PH off"
    for first, second in [(HELSINKI[1:], TALLINN), (TALLINN, HELSINKI[1:])]:
        hours_module._latest.clear()
        hours_module._parsed.cache_clear()
        answers = {
            place: hours_at(expression, "Europe/Helsinki", *place, epiphany).open_now
            for place in (first, second)
        }
        assert answers == {HELSINKI[1:]: False, TALLINN: True}


@pytest.mark.parametrize(
    "expression",
    [
        "Mo-Fr 09:00-18:00",
        "Fr-Sa 18:00-02:00",
        "Mo-Su 07:00-23:00; Dec 25 off",
        "Mo-Fr 08:00-12:00,13:00-17:00; Su off",
    ],
)
def test_hours_without_holidays_or_sun_are_the_same_everywhere_in_a_zone(expression: str) -> None:
    """An expression that names no holiday and no sun event is shared by every merchant of a
    zone; its answers equal those of the library given each merchant's own place."""
    rng = random.Random(expression)
    places = [(rng.uniform(59.0, 70.0), rng.uniform(20.0, 31.0)) for _ in range(5)]
    instant = datetime(2026, 10, 20, tzinfo=UTC)
    while instant < datetime(2027, 1, 10, tzinfo=UTC):
        instant += timedelta(minutes=rng.choice([13, 59, 180, 601]))
        for lat, lon in places:
            parsed = hours_module._parsed(expression, "Europe/Helsinki", lat, lon)
            assert parsed is not None
            own, _ = hours_module._evaluate(parsed, instant.astimezone(ZoneInfo("Europe/Helsinki")))
            assert hours_at(expression, "Europe/Helsinki", lat, lon, instant) == own, (instant, lat, lon)
    assert not hours_module._place_bound(expression)
