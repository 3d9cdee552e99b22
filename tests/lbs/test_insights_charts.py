"""The insight charts, read back as a browser or a screen reader would: parsed as XML, the
numbers drawn are the numbers given, bars are as long as their values, hidden values say so
(never 0), hostile titles stay text, and the empty cases draw."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbs.insights_charts import HIDDEN, by_hour_svg, funnel_svg, report_chart

NS = "{http://www.w3.org/2000/svg}"
STEPS = ["Impressions", "Clicks", "Claims", "Redemptions"]
counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))


def metrics(*funnel: int | None) -> dict[str, object]:
    """A group's numbers in the report's names: hidden ones null throughout."""
    hidden = funnel[0] is None
    names = ("impressions", "clicks", "claims", "redemptions")
    return {"suppressed": hidden, "users": None if hidden else 9, **dict(zip(names, funnel, strict=True))}


# An answer of GET /v1/merchant/insights?by=hour, the fields the charts read (docs/insights.md).
REPORT = {
    "from": "2026-10-01", "to": "2026-10-28", "by": "hour",
    "total": metrics(300, 40, 12, 9),
    "deals": [{"deal_id": 7, "title": "Coffee <b>-30 %</b>", **metrics(300, 40, 12, 9)}],
    "buckets": [{"key": "9", **metrics(100, 10, 5, 5)}, {"key": "18", **metrics(None, None, None, None)},
                {"key": "unknown", **metrics(50, 1, 1, 1)}],
}  # fmt: skip


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text") if t.get("class") == cls]


def bars(root: ET.Element) -> list[tuple[int, float]]:
    """(the value it stands for, its length) of every bar, in order."""
    return [
        (int(r.get("data-value", "")), float(r.get("width", "")))
        for r in root.iter(f"{NS}rect")
        if r.get("class") == "bar"
    ]


def number(text: str) -> int:
    return int(text.replace(",", ""))


def assert_proportional(drawn: list[tuple[int, float]]) -> None:
    widest = max((value for value, _ in drawn), default=0)
    longest = max((length for _, length in drawn), default=0.0)
    for value, length in drawn:
        expected = longest * value / widest if widest else 0.0
        assert length == pytest.approx(expected, abs=0.01), (value, length, drawn)


def test_the_funnel_draws_each_step_its_count_and_its_conversion() -> None:
    root = parse(funnel_svg(list(zip(STEPS, [2000, 500, 50, 40], strict=True)), "Coffee -30 %"))

    assert texts(root, "step") == STEPS
    assert [number(t) for t in texts(root, "count")] == [2000, 500, 50, 40]
    assert texts(root, "rate") == [f"{p} % of the step before" for p in ("25.0", "10.0", "80.0")]
    assert [v for v, _ in bars(root)] == [2000, 500, 50, 40]
    assert bars(root)[0][1] == pytest.approx(336)  # the widest fills the width less the margins
    assert_proportional(bars(root))
    assert root.findtext(f"{NS}title") == "Coffee -30 %"
    assert texts(root, "title") == ["Coffee -30 %"]


def test_a_hidden_step_is_drawn_hidden_not_as_zero_and_no_rate_is_derived_from_it() -> None:
    root = parse(funnel_svg(list(zip(STEPS, [900, 60, None, None], strict=True)), "Tea"))

    assert [number(t) for t in texts(root, "count")] == [900, 60]
    assert texts(root, "hidden-note") == [HIDDEN, HIDDEN]
    assert [r.get("class") for r in root.iter(f"{NS}rect")] == ["bar", "bar", "hidden", "hidden"]
    assert texts(root, "rate") == ["6.7 % of the step before"]  # none for, nor after, a hidden one
    label = root.get("aria-label", "")
    assert f"Claims: {HIDDEN}" in label and "Redemptions: hidden" in label and "Claims: 0" not in label


def test_the_accessible_name_holds_every_number() -> None:
    root = parse(funnel_svg(list(zip(STEPS, [12345, 678, 9, 0], strict=True)), "Lunch"))

    assert root.get("role") == "img" and root.get("width") == "100%"
    assert root.get("viewBox", "").startswith("0 0 360 ")
    assert root.get("aria-label") == (
        "Lunch. Impressions: 12,345; Clicks: 678 (5.5 % of the step before); "
        "Claims: 9 (1.3 % of the step before); Redemptions: 0 (0.0 % of the step before)."
    )
    assert [child.tag for child in root][:2] == [f"{NS}title", f"{NS}desc"]


def test_zero_everywhere_and_all_hidden_draw() -> None:
    zero = parse(funnel_svg(list(zip(STEPS, [0, 0, 0, 0], strict=True)), "New deal"))
    hidden = parse(funnel_svg(list(zip(STEPS, [None] * 4, strict=True)), "Quiet deal"))
    no_hours = parse(by_hour_svg([], "Nothing yet"))
    hidden_hours = parse(by_hour_svg([(h, None) for h in range(24)], "Few people"))

    assert [number(t) for t in texts(zero, "count")] == [0, 0, 0, 0]
    assert all(length == 0 for _, length in bars(zero)) and texts(zero, "rate") == []
    assert texts(hidden, "count") == [] and texts(hidden, "hidden-note") == [HIDDEN] * 4
    assert [number(t) for t in texts(no_hours, "count")] == [0] * 24
    assert no_hours.get("aria-label") == "Nothing yet. every hour: 0."
    assert texts(hidden_hours, "hidden-note") == [HIDDEN] * 24 and bars(hidden_hours) == []


def test_by_hour_draws_every_hour_in_order_missing_ones_as_zero() -> None:
    given_hours = [(18, 40), (7, 5), (12, None), (23, 0), (0, 10)]
    root = parse(by_hour_svg(given_hours, "Claims by hour"))

    assert texts(root, "hour") == [f"{h:02d}:00" for h in range(24)]
    expected = {18: 40, 7: 5, 23: 0, 0: 10}
    assert [v for v, _ in bars(root)] == [expected.get(h, 0) for h in range(24) if h != 12]
    assert [number(t) for t in texts(root, "count")] == [expected.get(h, 0) for h in range(24) if h != 12]
    assert texts(root, "hidden-note") == [HIDDEN]
    assert_proportional(bars(root))
    assert root.get("aria-label") == (
        f"Claims by hour. 00:00: 10; 07:00: 5; 12:00: {HIDDEN}; 18:00: 40; every other hour: 0."
    )


def test_rows_are_in_order_and_do_not_overlap() -> None:
    root = parse(by_hour_svg([(h, h * 3) for h in range(24)], "Claims by hour"))
    ys = [float(t.get("y", "")) for t in root.iter(f"{NS}text") if t.get("class") == "hour"]
    boxes = [(float(r.get("y", "")), float(r.get("height", ""))) for r in root.iter(f"{NS}rect")]

    assert all(b - a >= 18 for a, b in pairwise(ys))
    assert all(top + height < next_top for (top, height), (next_top, _) in pairwise(boxes))
    assert boxes[-1][0] + boxes[-1][1] <= float(root.get("viewBox", "").split()[3])


@pytest.mark.parametrize(
    "title",
    [
        "<script>alert('x')</script>",
        'Tom & Jerry\'s "best" <b>cake</b>',
        "]]><!-- --><?xml?>&amp;&#x41;",
        "a\x00b\x07c\ud800d\ufffe",  # what XML cannot hold is dropped, the rest stays
    ],
)
def test_hostile_titles_stay_text(title: str) -> None:
    for svg in (funnel_svg([("Impressions", 5)], title), by_hour_svg([(9, 5)], title)):
        root = parse(svg)
        shown = " ".join(texts(root, "title"))
        assert "<script" not in svg.replace("&lt;script", "")
        assert len(list(root.iter(f"{NS}script"))) == 0 and len(list(root.iter(f"{NS}b"))) == 0
        expected = "".join(c for c in title if c not in "\x00\x07\ud800\ufffe")
        assert root.findtext(f"{NS}title") == expected and shown.replace("…", "") in expected


def test_a_very_long_title_wraps_to_two_lines_and_ends_in_an_ellipsis() -> None:
    title = "Funnel · " + "Kanelbulle och kaffe för två, hela veckan " * 20
    root = parse(funnel_svg([("Impressions", 5)], title))
    lines = texts(root, "title")
    cjk = texts(parse(funnel_svg([("Impressions", 5)], "咖啡" * 100)), "title")

    assert len(lines) == 2 and lines[1].endswith("…") and lines[0] + " " + lines[1][:-1] in title
    assert all(len(line) <= 40 for line in lines)
    assert len(cjk) == 2 and all(len(line) <= 22 for line in cjk)  # wide glyphs: fewer to a line
    title_tag = root.findtext(f"{NS}title") or ""
    assert len(title_tag) == 300 and title_tag.endswith("…")  # the accessible name is capped too


def test_a_long_step_label_is_cut_before_it_reaches_the_rate() -> None:
    root = parse(funnel_svg([("Impressions", 100), ("Clicks on the deal page and the map " * 3, 50)], "x"))

    label = texts(root, "step")[1]
    assert label.endswith("…") and len(label) < 20


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_counts_must_be_non_negative_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="counts"):
        funnel_svg([("Impressions", bad)], "x")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="counts"):
        by_hour_svg([(3, bad)], "x")  # type: ignore[list-item]


@pytest.mark.parametrize("hours", [[(24, 1)], [(-1, 1)], [(3, 1), (3, 2)]])
def test_hours_are_distinct_and_0_to_23(hours: list[tuple[int, int | None]]) -> None:
    with pytest.raises(ValueError, match="hours"):
        by_hour_svg(hours, "x")


@given(st.lists(counts, min_size=1, max_size=6), st.text(max_size=200))
def test_any_funnel_parses_and_draws_its_numbers(values: list[int | None], title: str) -> None:
    root = parse(funnel_svg([(f"Step {i}", v) for i, v in enumerate(values)], title))

    assert [number(t) for t in texts(root, "count")] == [v for v in values if v is not None]
    assert len(texts(root, "hidden-note")) == values.count(None)
    assert_proportional(bars(root))


@given(st.dictionaries(st.integers(min_value=0, max_value=23), counts))
def test_any_day_parses_and_draws_its_numbers(hours: dict[int, int | None]) -> None:
    root = parse(by_hour_svg(list(hours.items()), "By hour"))

    shown = [hours.get(h, 0) for h in range(24)]
    assert [number(t) for t in texts(root, "count")] == [v for v in shown if v is not None]
    assert len(texts(root, "hidden-note")) == shown.count(None)
    assert_proportional(bars(root))


def test_a_report_gives_the_funnel_of_its_total_and_the_hours_of_its_buckets() -> None:
    funnel = parse(report_chart(REPORT, "funnel"))
    hours = parse(report_chart(REPORT, "by_hour", "claims", deal_id=7))

    assert [number(t) for t in texts(funnel, "count")] == [300, 40, 12, 9]
    assert funnel.findtext(f"{NS}title") == "All deals · 2026-10-01 to 2026-10-28"
    assert [number(t) for t in texts(hours, "count")] == [5 if h == 9 else 0 for h in range(24) if h != 18]
    assert texts(hours, "hidden-note") == [HIDDEN]  # 18:00; "unknown" is no hour
    assert hours.findtext(f"{NS}title") == "Claims by hour · Coffee <b>-30 %</b> · 2026-10-01 to 2026-10-28"


def test_a_report_by_day_has_no_hours_to_draw() -> None:
    with pytest.raises(ValueError, match="hourly"):
        report_chart({**REPORT, "by": "day"}, "by_hour")
