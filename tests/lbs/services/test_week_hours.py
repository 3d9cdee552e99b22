"""The week of opening hours an app shows, with known answers: ordinary days, overnight
ranges, 24/7, off, Finnish public holidays, the DST weeks, and the local week of `at`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from lbs.services.hours import hours_at
from lbs.services.week_hours import week_hours

HELSINKI = ("Europe/Helsinki", 60.1699, 24.9384)
WEDNESDAY = "2026-11-25T12:00:00+02:00"  # the week of Mon 23 to Sun 29 November 2026


def week(expression: str | None, at: str = WEDNESDAY) -> dict[str, Any]:
    found = week_hours(expression, *HELSINKI, datetime.fromisoformat(at))
    assert found is not None
    return found


def spans(day: dict[str, Any]) -> list[str]:
    """A day's intervals as 'opens-closes', '+' for the next day, '?' for unknown."""
    marks = {True: "+", False: ""}
    return [
        f"{i['opens']}-{i['closes']}{marks[i['closes_next_day']]}{'?' if i['state'] == 'unknown' else ''}"
        for i in day["intervals"]
    ]


def by_day(expression: str, at: str = WEDNESDAY) -> list[list[str]]:
    return [spans(day) for day in week(expression, at)["week"]]


def test_a_week_is_monday_to_sunday_in_local_dates_with_today_among_them() -> None:
    found = week("Mo-Fr 08:00-18:00; Sa 10:00-16:00")
    assert [d["date"] for d in found["week"]] == [f"2026-11-{n}" for n in range(23, 30)]
    assert [d["weekday"] for d in found["week"]] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert [spans(d) for d in found["week"]] == [["08:00-18:00"]] * 5 + [["10:00-16:00"], []]
    assert found["today"] == found["week"][2]
    assert [d["text"] for d in found["week"][4:]] == [
        "Friday: 08:00\N{EN DASH}18:00",
        "Saturday: 10:00\N{EN DASH}16:00",
        "Sunday: Closed",
    ]


def test_the_week_is_the_merchants_local_week_not_utcs() -> None:
    # Sunday 22:30 UTC is already Monday 00:30 in Helsinki: the next week, and today Monday.
    found = week("Mo-Fr 08:00-18:00", "2026-11-29T22:30:00+00:00")
    assert found["week"][0]["date"] == "2026-11-30" and found["today"]["date"] == "2026-11-30"


def test_an_overnight_range_is_listed_on_the_day_it_opens() -> None:
    assert by_day("Fr-Sa 18:00-02:00") == [[], [], [], [], ["18:00-02:00+"], ["18:00-02:00+"], []]
    assert week("Fr-Sa 18:00-02:00")["week"][4]["text"] == "Friday: 18:00\N{EN DASH}02:00"
    # Every night, Sunday's included: its end is read from the next week's Monday.
    assert by_day("Mo-Su 22:00-04:00") == [["22:00-04:00+"]] * 7
    # Ranges that meet at midnight are one overnight interval.
    assert by_day("Su 18:00-24:00; Mo 00:00-02:00") == [[], [], [], [], [], [], ["18:00-02:00+"]]


def test_hours_open_for_days_are_listed_on_each_day_not_as_one_night() -> None:
    # Open from Monday 00:00 without a break to Saturday 22:00: Saturday is its own day.
    assert by_day("Mo-Fr 00:00-24:00; Sa 00:00-22:00") == [["00:00-24:00"]] * 5 + [["00:00-22:00"], []]
    assert week("Mo-Fr 00:00-24:00; Sa 00:00-22:00")["week"][5]["text"] == "Saturday: 00:00\N{EN DASH}22:00"


def test_around_the_clock_and_never() -> None:
    assert by_day("24/7") == [["00:00-24:00"]] * 7
    assert week("24/7")["today"]["text"] == "Wednesday: Open 24 hours"
    assert by_day("24/7; We off") == [["00:00-24:00"]] * 2 + [[]] + [["00:00-24:00"]] * 4
    assert by_day("off") == [[]] * 7
    assert by_day("Mo-Fr 09:00-12:00,13:00-17:00")[0] == ["09:00-12:00", "13:00-17:00"]


def test_public_holidays_close_the_days_the_rule_says() -> None:
    # Christmas week 2026 in Finland: Thu 24 (Christmas Eve), Fri 25, Sat 26 are holidays.
    days = by_day("Mo-Sa 09:00-18:00; PH off", "2026-12-23T12:00:00+02:00")
    assert days == [["09:00-18:00"]] * 3 + [[], [], [], []]
    # Without "PH off" the same days are open.
    assert by_day("Mo-Sa 09:00-18:00", "2026-12-23T12:00:00+02:00")[3] == ["09:00-18:00"]


def test_dst_weeks_keep_wall_clock_times() -> None:
    # Clocks go forward on Sunday 29 March 2026 (03:00 -> 04:00) and back on 25 October.
    assert by_day("Su 02:00-06:00", "2026-03-25T12:00:00+02:00")[6] == ["02:00-06:00"]
    assert by_day("Su 02:00-06:00", "2026-10-21T12:00:00+03:00")[6] == ["02:00-06:00"]
    assert by_day("Sa 20:00-05:00", "2026-03-25T12:00:00+02:00")[5] == ["20:00-05:00+"]


def test_undecided_hours_are_shown_as_unknown() -> None:
    found = week("Mo-Fr 10:00-12:00 unknown")
    assert by_day("Mo-Fr 10:00-12:00 unknown")[0] == ["10:00-12:00?"]
    assert found["week"][0]["text"] == "Monday: 10:00\N{EN DASH}12:00 (unconfirmed)"


@pytest.mark.parametrize("expression", [None, "", "whenever we feel like it"])
def test_no_hours_or_hours_that_do_not_parse_have_no_week(expression: str | None) -> None:
    assert week_hours(expression, *HELSINKI, datetime.fromisoformat(WEDNESDAY)) is None


@pytest.mark.parametrize(
    "expression",
    [
        "Mo-Fr 08:00-18:00; Fr-Sa 18:00-02:00; PH off",
        "Mo-Su 22:00-04:00",
        "24/7; Tu off",
        "Mo-Fr 00:00-24:00; Sa 00:00-22:00",
    ],
)
def test_the_week_agrees_with_open_now_at_every_half_hour(expression: str) -> None:
    """Open exactly when the week lists an interval around the instant (unknown: never open)."""
    found = week(expression, "2026-12-23T12:00:00+02:00")
    for day_index, day in enumerate(found["week"]):
        for half_hour in range(48):
            local = datetime.fromisoformat(
                f"{day['date']}T{half_hour // 2:02d}:{30 * (half_hour % 2):02d}:00+02:00"
            )
            clock = f"{local.hour:02d}:{local.minute:02d}"
            listed = any(
                i["opens"] <= clock < i["closes"] or (i["closes_next_day"] and i["opens"] <= clock)
                for i in day["intervals"]
            )
            # The early hours may belong to the night before.
            before = found["week"][day_index - 1]["intervals"] if day_index else []
            listed |= any(i["closes_next_day"] and clock < i["closes"] for i in before)
            is_open = hours_at(expression, *HELSINKI, local).open_now
            if day_index or listed:  # Monday's early hours may come from the week before
                assert bool(is_open) == listed, (day["date"], clock)
