"""Deal windows in local time (DST, far zones, midnight, clipping, merging) and deal states: docs/deals.md."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.services.deal_schedule import (
    DAYS,
    OUTSIDE_WINDOW,
    DealState,
    Occurrence,
    Schedule,
    Window,
    deal_state,
    parse_hhmm,
    unclaimable_reason,
    window_occurrences,
)

NY, HEL = "America/New_York", "Europe/Helsinki"
WIDE = (datetime(2025, 12, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def local(tz: str, *args: int) -> datetime:
    """A local wall time (fold=0) as a UTC instant."""
    return datetime(*args, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def schedule(windows: list[dict], tz: str, valid: tuple[datetime, datetime] = WIDE) -> Schedule:
    return Schedule.of(valid[0], valid[1], windows, tz)


def win(days: list[str], start: str, end: str) -> dict:
    return {"days": days, "start": start, "end": end}


@pytest.mark.parametrize(
    ("text", "minutes"), [("00:00", 0), ("18:30", 1110), ("23:59", 1439), ("24:00", 1440)]
)
def test_parse_hhmm_accepts(text: str, minutes: int) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["24:01", "7:00", "12:60", "ab:cd", "25:00", "", "12:00 ", "1200"])
def test_parse_hhmm_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(text)


@pytest.mark.parametrize(
    ("day", "hour", "minute", "inside"),
    [
        (7, 20, 0, True),  # Monday evening
        (7, 17, 59, False),  # just before the start
        (7, 18, 0, True),  # the start is inclusive
        (7, 23, 0, False),  # the end is exclusive
        (7, 22, 59, True),
        (11, 18, 30, True),  # Friday
        (12, 19, 0, False),  # Saturday is not listed
        (13, 19, 0, False),  # nor Sunday
    ],
)
def test_evening_window_in_helsinki(day: int, hour: int, minute: int, inside: bool) -> None:
    sched = schedule([win(WEEKDAYS, "18:00", "23:00")], HEL)
    found = sched.window_at(local(HEL, 2026, 12, day, hour, minute))
    assert (found is not None) == inside
    if found is not None:
        assert found == Occurrence(local(HEL, 2026, 12, day, 18), local(HEL, 2026, 12, day, 23))
        assert found.ends_at - found.starts_at == timedelta(hours=5)


def test_window_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    sched = schedule([win(["fri"], "22:00", "02:00")], HEL)
    friday = Occurrence(local(HEL, 2026, 12, 11, 22), local(HEL, 2026, 12, 12, 2))
    assert sched.window_at(local(HEL, 2026, 12, 12, 1)) == friday  # Saturday 01:00
    assert sched.window_at(local(HEL, 2026, 12, 11, 22)) == friday
    assert sched.window_at(local(HEL, 2026, 12, 11, 21, 59)) is None
    assert sched.window_at(local(HEL, 2026, 12, 12, 2)) is None
    assert sched.window_at(local(HEL, 2026, 12, 12, 22, 30)) is None  # Saturday not listed
    with_sat = schedule([win(["fri", "sat"], "22:00", "02:00")], HEL)
    assert with_sat.window_at(local(HEL, 2026, 12, 12, 22, 30)) == Occurrence(
        local(HEL, 2026, 12, 12, 22), local(HEL, 2026, 12, 13, 2)
    )


@pytest.mark.parametrize(
    ("tz", "saturday", "hours"),
    [(NY, (2026, 3, 7), 5), (NY, (2026, 10, 31), 7), (HEL, (2026, 3, 28), 5), (HEL, (2026, 10, 24), 7)],
)
def test_overnight_window_on_dst_nights(tz: str, saturday: tuple[int, int, int], hours: int) -> None:
    sched = schedule([win(["sat"], "22:00", "04:00")], tz)
    found = sched.window_at(local(tz, *saturday, 23))
    assert found is not None
    assert found.starts_at == local(tz, *saturday, 22)
    assert found.ends_at - found.starts_at == timedelta(hours=hours)
    assert found.ends_at.astimezone(ZoneInfo(tz)).hour == 4
    assert sched.window_at(found.ends_at) is None
    assert sched.window_at(found.ends_at - timedelta(microseconds=1)) == found


@pytest.mark.parametrize(
    ("tz", "start", "end", "sunday"),
    [(NY, "02:00", "03:00", date(2026, 3, 8)), (HEL, "03:00", "04:00", date(2026, 3, 29))],
)
def test_window_inside_the_skipped_hour_is_empty(tz: str, start: str, end: str, sunday: date) -> None:
    sched = schedule([win(["sun"], start, end)], tz)
    day_start = local(tz, sunday.year, sunday.month, sunday.day)
    for minute in range(0, 23 * 60, 5):  # the spring-forward day has 23 hours
        assert sched.window_at(day_start + timedelta(minutes=minute)) is None
    assert window_occurrences(sched.windows, sched.tz, day_start, day_start + timedelta(hours=23)) == []
    hour = int(start[:2])
    following, previous = sunday + timedelta(days=7), sunday - timedelta(days=7)
    nxt = sched.next_window(day_start - timedelta(hours=12))  # Saturday noon
    assert nxt == Occurrence(
        local(tz, following.year, following.month, following.day, hour),
        local(tz, following.year, following.month, following.day, hour + 1),
    )
    # The previous Sunday (no DST change) has the ordinary one-hour window.
    before = sched.window_at(local(tz, previous.year, previous.month, previous.day, hour, 30))
    assert before is not None and before.ends_at - before.starts_at == timedelta(hours=1)


def test_next_window_looks_past_an_empty_dst_occurrence() -> None:
    # Sunday 02:00-03:00 in New York: after the 1 March one, the 8 March one is empty (skipped
    # hour), so the next window is 15 March 02:00 EDT, 14 days minus 30 minutes later.
    sched = schedule([win(["sun"], "02:00", "03:00")], NY)
    nxt = sched.next_window(local(NY, 2026, 3, 1, 2, 30))
    assert nxt == Occurrence(local(NY, 2026, 3, 15, 2), local(NY, 2026, 3, 15, 3))


def test_start_in_the_gap_is_shifted_and_ambiguous_start_is_the_first() -> None:
    spring = schedule([win(["sun"], "02:30", "05:00")], NY)
    found = spring.window_at(local(NY, 2026, 3, 8, 4))
    assert found is not None
    assert found.starts_at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert found.starts_at.astimezone(ZoneInfo(NY)).strftime("%H:%M %Z") == "03:30 EDT"
    assert found.ends_at == datetime(2026, 3, 8, 9, 0, tzinfo=UTC)  # 05:00 EDT
    assert spring.window_at(datetime(2026, 3, 8, 7, 29, tzinfo=UTC)) is None
    fall = schedule([win(["sun"], "01:30", "03:00")], NY)
    found = fall.window_at(datetime(2026, 11, 1, 6, 0, tzinfo=UTC))
    assert found is not None
    assert found.starts_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, the first one
    assert found.ends_at == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # 03:00 EST


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        (NY, (2026, 3, 8)),
        (NY, (2026, 11, 1)),
        (HEL, (2026, 3, 29)),
        (HEL, (2026, 10, 25)),
        (HEL, (2026, 6, 7)),
    ],
)
def test_evening_window_on_a_dst_day_is_five_hours(tz: str, day: tuple[int, int, int]) -> None:
    sched = schedule([win(list(DAYS), "18:00", "23:00")], tz)
    found = sched.window_at(local(tz, *day, 20))
    assert found == Occurrence(local(tz, *day, 18), local(tz, *day, 23))
    assert found.ends_at - found.starts_at == timedelta(hours=5)


@pytest.mark.parametrize(
    ("tz", "utc_start"),
    [
        ("Pacific/Kiritimati", datetime(2026, 5, 31, 19, 0, tzinfo=UTC)),  # UTC+14: Sunday 19:00 UTC
        ("Pacific/Pago_Pago", datetime(2026, 6, 1, 20, 0, tzinfo=UTC)),  # UTC-11
        ("Asia/Kathmandu", datetime(2026, 6, 1, 3, 15, tzinfo=UTC)),  # UTC+05:45
    ],
)
def test_windows_are_in_local_time_far_from_utc(tz: str, utc_start: datetime) -> None:
    sched = schedule([win(["mon"], "09:00", "10:00")], tz)
    expected = Occurrence(utc_start, utc_start + timedelta(hours=1))
    assert sched.window_at(utc_start + timedelta(minutes=30)) == expected
    assert sched.window_at(utc_start - timedelta(minutes=1)) is None
    assert sched.window_at(utc_start + timedelta(hours=1)) is None
    assert sched.next_window(utc_start - timedelta(days=2)) == expected
    # Monday 09:30 UTC is not Monday 09:30 local (except by coincidence, which none of these is).
    assert sched.window_at(datetime(2026, 6, 1, 9, 30, tzinfo=UTC)) is None


def test_clipping_to_validity() -> None:
    valid = (local(HEL, 2026, 12, 7, 20), local(HEL, 2026, 12, 9, 21))  # Monday 20:00 to Wednesday 21:00
    sched = schedule([win(WEEKDAYS, "18:00", "23:00")], HEL, valid)
    assert sched.window_at(local(HEL, 2026, 12, 7, 19)) is None
    assert sched.window_at(local(HEL, 2026, 12, 7, 21)) == Occurrence(valid[0], local(HEL, 2026, 12, 7, 23))
    assert sched.next_window(local(HEL, 2026, 12, 7, 12)) == Occurrence(valid[0], local(HEL, 2026, 12, 7, 23))
    assert sched.window_at(local(HEL, 2026, 12, 9, 20)) == Occurrence(local(HEL, 2026, 12, 9, 18), valid[1])
    assert sched.window_at(local(HEL, 2026, 12, 9, 21)) is None
    assert sched.next_window(local(HEL, 2026, 12, 8, 23)) == Occurrence(local(HEL, 2026, 12, 9, 18), valid[1])
    assert sched.next_window(local(HEL, 2026, 12, 9, 18)) is None  # none starts before valid_until
    short = schedule([win(["sat"], "10:00", "12:00")], HEL, valid)  # no Saturday in the validity
    assert short.next_window(valid[0] - timedelta(days=30)) is None
    assert short.window_at(local(HEL, 2026, 12, 12, 11)) is None


def test_no_windows_means_all_day_within_validity() -> None:
    valid = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
    sched = schedule([], HEL, valid)
    assert sched.window_at(datetime(2026, 12, 15, 3, 17, tzinfo=UTC)) == Occurrence(*valid)
    assert sched.window_at(valid[0]) == Occurrence(*valid)
    assert sched.window_at(valid[0] - timedelta(microseconds=1)) is None
    assert sched.window_at(valid[1]) is None
    assert sched.next_window(datetime(2026, 11, 28, tzinfo=UTC)) == Occurrence(*valid)
    assert sched.next_window(datetime(2026, 12, 2, tzinfo=UTC)) is None


def test_back_to_back_windows_form_one_span() -> None:
    every_day = schedule([win(list(DAYS), "00:00", "24:00")], HEL)
    at = local(HEL, 2026, 6, 3, 12)
    found = every_day.window_at(at)
    assert found is not None and found.contains(at)
    assert found.ends_at - found.starts_at > timedelta(days=1)
    assert found.ends_at - at >= timedelta(days=6)  # followed up to a week
    tz = ZoneInfo(HEL)
    days = window_occurrences(every_day.windows, tz, at, at + timedelta(days=3))
    assert len(days) == 1 and days[0].starts_at <= at and days[0].ends_at >= at + timedelta(days=3)


LUNCH = [win(["mon"], "11:00", "14:00"), win(["mon"], "13:00", "15:00")]
LUNCH_SPAN = Occurrence(local(HEL, 2026, 6, 1, 11), local(HEL, 2026, 6, 1, 15))


def test_overlapping_windows_merge() -> None:
    lunch = schedule(LUNCH, HEL)
    assert lunch.window_at(local(HEL, 2026, 6, 1, 11, 30)) == LUNCH_SPAN
    assert lunch.window_at(local(HEL, 2026, 6, 1, 13, 30)) == LUNCH_SPAN
    assert lunch.window_at(local(HEL, 2026, 6, 1, 15)) is None
    assert lunch.next_window(local(HEL, 2026, 6, 1, 9)) == LUNCH_SPAN
    assert lunch.next_window(local(HEL, 2026, 6, 1, 12)).starts_at == local(HEL, 2026, 6, 8, 11)
    tz = ZoneInfo(HEL)
    assert window_occurrences(lunch.windows, tz, local(HEL, 2026, 6, 1), local(HEL, 2026, 6, 2)) == [
        LUNCH_SPAN
    ]


def test_window_at_reports_the_merged_span_after_the_first_window_ends() -> None:
    # 14:30 is only in the second window, but the occurrence containing it is the merged 11:00-15:00.
    assert schedule(LUNCH, HEL).window_at(local(HEL, 2026, 6, 1, 14, 30)) == LUNCH_SPAN


DEC1, DEC31 = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
MID = datetime(2026, 12, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "ended_at", "total", "claimed", "at", "expected"),
    [
        ("draft", None, 10, 10, DEC31 + timedelta(days=9), DealState.DRAFT),
        ("published", None, None, 0, datetime(2026, 11, 20, tzinfo=UTC), DealState.SCHEDULED),
        ("published", None, None, 0, MID, DealState.LIVE),
        ("published", None, 5, 4, DEC1, DealState.LIVE),
        ("published", None, None, 0, DEC31, DealState.EXPIRED),
        ("paused", None, 10, 10, DEC31, DealState.EXPIRED),
        ("published", None, 10, 10, DEC31 + timedelta(days=1), DealState.EXPIRED),
        ("ended", MID, None, 0, MID, DealState.EXPIRED),
        ("ended", MID, None, 0, MID - timedelta(seconds=1), DealState.LIVE),
        ("paused", MID, 10, 10, MID, DealState.EXPIRED),
        ("paused", None, 10, 10, MID, DealState.PAUSED),
        ("paused", None, None, 0, datetime(2026, 11, 20, tzinfo=UTC), DealState.PAUSED),
        ("published", None, 10, 10, MID, DealState.SOLD_OUT),
        ("published", None, 10, 10, datetime(2026, 11, 20, tzinfo=UTC), DealState.SOLD_OUT),
    ],
)
def test_deal_state_precedence(
    status: str, ended_at: datetime | None, total: int | None, claimed: int, at: datetime, expected: DealState
) -> None:
    assert deal_state(status, DEC1, DEC31, ended_at, total, claimed, at) is expected


@pytest.mark.parametrize(
    ("state", "window", "reason"),
    [
        (DealState.LIVE, Occurrence(DEC1, DEC31), None),
        (DealState.LIVE, None, OUTSIDE_WINDOW),
        (DealState.SCHEDULED, None, "not_started"),
        (DealState.SCHEDULED, Occurrence(DEC1, DEC31), "not_started"),
        (DealState.PAUSED, Occurrence(DEC1, DEC31), "paused"),
        (DealState.SOLD_OUT, Occurrence(DEC1, DEC31), "sold_out"),
        (DealState.EXPIRED, None, "expired"),
        (DealState.DRAFT, Occurrence(DEC1, DEC31), "draft"),
    ],
)
def test_unclaimable_reason(state: DealState, window: Occurrence | None, reason: str | None) -> None:
    assert unclaimable_reason(state, window) == reason
    assert OUTSIDE_WINDOW == "outside_window"


minutes = st.one_of(st.integers(0, 47).map(lambda h: h * 30), st.integers(0, 1439))
window_st = st.builds(
    lambda days, start, end: Window(frozenset(days), start, end),
    st.sets(st.integers(0, 6), min_size=1),
    minutes,
    st.one_of(st.integers(1, 48).map(lambda h: h * 30), st.integers(1, 1440)),
).filter(lambda w: w.start_min != w.end_min)
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.one_of(
    st.integers(0, 365 * 24 * 4).map(lambda q: YEAR_START + timedelta(minutes=15 * q)),
    st.integers(0, 365 * 24 * 3600).map(lambda s: YEAR_START + timedelta(seconds=s)),
)
ZONES = [NY, HEL, "Pacific/Kiritimati", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"]


@settings(max_examples=300)
@given(st.lists(window_st, min_size=1, max_size=3), st.sampled_from(ZONES), instants)
def test_window_at_and_next_window_agree_with_occurrences(
    windows: list[Window], tz: str, at: datetime
) -> None:
    sched = Schedule(WIDE[0], WIDE[1], tuple(windows), ZoneInfo(tz))
    around = window_occurrences(windows, sched.tz, at - timedelta(days=9), at + timedelta(days=9))
    containing = [o for o in around if o.contains(at)]
    found = sched.window_at(at)
    assert (found is not None) == bool(containing)
    if found is not None:
        assert found.starts_at <= at < found.ends_at
        span = containing[0]
        assert span.starts_at <= found.starts_at
        # The span is followed to its true end: beyond the ±9 days sampled here only if it
        # reaches their edge, and then never short of it.
        if span.ends_at < at + timedelta(days=9):
            assert found.ends_at == span.ends_at
        else:
            assert found.ends_at >= span.ends_at
    later = [o.starts_at for o in around if o.starts_at > at]
    nxt = sched.next_window(at)
    if nxt is not None:
        assert nxt.starts_at > at
        assert nxt.starts_at < nxt.ends_at
        assert not [s for s in later if s < nxt.starts_at]
        assert nxt.starts_at in later
    # Windows repeat weekly: one starting within a week is always found.
    assert (nxt is not None) or not [s for s in later if s <= at + timedelta(days=7)]


def test_a_continuous_week_of_windows_claims_until_valid_until() -> None:
    """Mo-Su 00:00-24:00 is one span: its end is the deal's end, not a week's worth of windows."""
    start, until = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
    every_day = [{"days": list(DAYS), "start": "00:00", "end": "24:00"}]
    schedule = Schedule.of(start, until, every_day, HEL)

    span = schedule.window_at(datetime(2026, 12, 24, 12, tzinfo=UTC))

    assert span is not None and span.ends_at == until
