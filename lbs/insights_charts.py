"""The merchant's insight charts as SVG: the funnel and the day by hour, readable on a phone.

Pure functions from numbers to text, no I/O. Written with xml.etree, which escapes every
title and label (merchants choose their deal titles: "<script>" stays text). A None value is
one that k-anonymity hid: drawn as hidden, never as 0, and no rate is worked out from it.

Laid out for a 360 px wide viewBox shown at width 100%: on a phone the units are about CSS
pixels, so the fonts (12-16 units) stay legible; wider screens scale it up. Every number is a
<text> (the aria-label sums them up too, since role="img" hides the children from screen
readers), and long titles wrap to two lines and then end in an ellipsis; widths of text are
estimated on the generous side (a wide glyph counts a full em) so that labels never overlap.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

HIDDEN = "hidden: fewer than 5 people"
ChartKind = Literal["funnel", "by_hour"]
Measure = Literal["impressions", "clicks", "claims", "redemptions"]
# The funnel's steps, in order: the report's names and the words drawn.
STEPS: dict[str, str] = {
    "impressions": "Impressions", "clicks": "Clicks", "claims": "Claims", "redemptions": "Redemptions",
}  # fmt: skip
WIDTH = 360
PAD = 12
TITLE_PX = 16
LABEL_PX = 14
SMALL_PX = 13
MAX_TITLE_LINES = 2
MAX_ACCESSIBLE_TITLE = 300  # characters of the title in <title> and aria-label
BAR_FILL = "#1e40af"  # 10:1 against white, and white on it
INK = "#1f2937"
MUTED = "#4b5563"  # 7.6:1 against white
HIDDEN_FILL = "#f3f4f6"
_SVG_NS = "http://www.w3.org/2000/svg"
# Characters XML 1.0 cannot hold (C0 controls but tab and newlines, lone surrogates, U+FFFE/F):
# dropped, so the document always parses.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def report_chart(
    report: Mapping[str, Any], kind: ChartKind, measure: Measure = "impressions", deal_id: int | None = None
) -> str:
    """The chart of an answer of GET /v1/merchant/insights (by=hour for by_hour): the funnel of
    its total, or `measure` per local hour from its buckets; titled with the deal and dates."""
    titles = {deal["deal_id"]: deal["title"] for deal in report["deals"]}
    scope = titles.get(deal_id, f"Deal {deal_id}") if deal_id is not None else "All deals"
    dates = f"{report['from']} to {report['to']}"
    if kind == "funnel":
        steps = [(label, report["total"][name]) for name, label in STEPS.items()]
        return funnel_svg(steps, f"{scope} · {dates}")
    if kind == "by_hour":
        if report["by"] != "hour":
            raise ValueError(f"a by_hour chart is drawn from hourly buckets, not by={report['by']}")
        hours = [(int(b["key"]), b[measure]) for b in report["buckets"] if b["key"].isdigit()]
        return by_hour_svg(hours, f"{STEPS[measure]} by hour · {scope} · {dates}")
    raise ValueError(f"kind is funnel or by_hour, not {kind!r}")


def funnel_svg(steps: list[tuple[str, int | None]], title: str) -> str:
    """Impressions → clicks → claims → redemptions as horizontal bars, each with its count and
    the share of the step before it (when both are shown and the one before is not 0)."""
    _check_counts(value for _, value in steps)
    row = 54
    svg, top = _chart(title, height_after_title=len(steps) * row + PAD)
    widest = max((v for _, v in steps if v is not None), default=0)
    summary = []
    for index, (label, value) in enumerate(steps):
        y = top + index * row
        rate = _share(value, steps[index - 1][1]) if index else None
        room: float = WIDTH - 2 * PAD
        if rate is not None:
            said = f"{rate} of the step before"
            _text(svg, WIDTH - PAD, y + 16, said, SMALL_PX, anchor="end", cls="rate")
            room -= _width(said, SMALL_PX) + 8
        name = _fit(_clean(label), room)
        _text(svg, PAD, y + 16, name, LABEL_PX, weight="bold", cls="step")
        bar_y = y + 24
        if value is None:
            _hidden_bar(svg, PAD, bar_y, WIDTH - 2 * PAD, 22)
            summary.append(f"{name}: {HIDDEN}")
        else:
            _bar(svg, PAD, bar_y, WIDTH - 2 * PAD, 22, value, widest, LABEL_PX)
            summary.append(f"{name}: {value:,}" + (f" ({rate} of the step before)" if rate else ""))
    return _finish(svg, title, summary)


def by_hour_svg(hours: list[tuple[int, int | None]], title: str) -> str:
    """One bar per local hour, 00:00 at the top to 23:00; an hour not given is 0 (nothing
    happened then). Hours are 0-23, each at most once."""
    values: dict[int, int | None] = {}
    for hour, value in hours:
        if not 0 <= hour <= 23 or hour in values:
            raise ValueError(f"hours must be distinct integers from 0 to 23, not {hour!r} twice or outside")
        values[hour] = value
    _check_counts(values.values())
    row = 20
    svg, top = _chart(title, height_after_title=24 * row + PAD)
    widest = max((v for v in values.values() if v is not None), default=0)
    label_w = _width("00:00", SMALL_PX) + 8
    summary, zero = [], 0
    for hour in range(24):
        value = values.get(hour, 0)
        y = top + hour * row
        clock = f"{hour:02d}:00"
        _text(svg, PAD, y + 14, clock, SMALL_PX, fill=MUTED, cls="hour")
        left = PAD + label_w
        if value is None:
            _hidden_bar(svg, left, y + 2, WIDTH - PAD - left, row - 4, font_px=12)
            summary.append(f"{clock}: {HIDDEN}")
        else:
            _bar(svg, left, y + 3, WIDTH - PAD - left, row - 6, value, widest, 12)
            if value:
                summary.append(f"{clock}: {value:,}")
            else:
                zero += 1
    if zero:
        summary.append(f"{'every other hour' if len(summary) else 'every hour'}: 0")
    return _finish(svg, title, summary)


def _check_counts(values: Iterable[int | None]) -> None:
    for value in values:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"counts are integers from 0 up or None (hidden), not {value!r}")


def _share(value: int | None, before: int | None) -> str | None:
    if value is None or before is None or before == 0:
        return None
    return f"{100 * value / before:.1f} %"


def _chart(title: str, height_after_title: int) -> tuple[ET.Element, int]:
    """The <svg> with its visible title (wrapped, then ellipsised); the y where the plot starts."""
    lines = _wrap(_clean(title), WIDTH - 2 * PAD, TITLE_PX)
    top = PAD + len(lines) * 22 + 8
    svg = ET.Element(
        "svg",
        {
            "xmlns": _SVG_NS,
            "viewBox": f"0 0 {WIDTH} {top + height_after_title}",
            "width": "100%",
            "role": "img",
            "font-family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        },
    )
    for index, line in enumerate(lines):
        _text(svg, PAD, PAD + 16 + index * 22, line, TITLE_PX, weight="bold", cls="title")
    return svg, top


def _finish(svg: ET.Element, title: str, summary: list[str]) -> str:
    name = _fit_chars(_clean(title), MAX_ACCESSIBLE_TITLE)
    described = f"{name}. {'; '.join(summary)}." if summary else name
    svg.set("aria-label", described)
    # <title> and <desc> first: the accessible name and description, and a tooltip.
    desc = ET.Element("desc")
    desc.text = "; ".join(summary)
    heading = ET.Element("title")
    heading.text = name
    svg.insert(0, desc)
    svg.insert(0, heading)
    return ET.tostring(svg, encoding="unicode")


def _bar(
    svg: ET.Element, x: float, y: float, room: float, height: float, value: int, widest: int, font_px: int
) -> None:
    """A bar as long as value is of widest (the longest fills the room), with its count beside
    it, or inside its end in white when the room beside it is too short."""
    length = room * value / widest if widest else 0.0
    ET.SubElement(
        svg,
        "rect",
        {
            "class": "bar",
            "x": _n(x),
            "y": _n(y),
            "width": _n(length),
            "height": _n(height),
            "fill": BAR_FILL,
            "data-value": str(value),
        },
    )
    count = f"{value:,}"
    baseline = y + height / 2 + font_px * 0.35
    if length + 6 + _width(count, font_px, bold=True) <= room:
        _text(svg, x + length + 6, baseline, count, font_px, weight="bold", cls="count", value=value)
    else:
        _text(
            svg, x + length - 6, baseline, count, font_px, weight="bold", fill="#ffffff",
            anchor="end", cls="count", value=value,
        )  # fmt: skip


def _hidden_bar(
    svg: ET.Element, x: float, y: float, room: float, height: float, font_px: int = SMALL_PX
) -> None:
    """A dashed outline where the bar would be, saying why there is none."""
    ET.SubElement(
        svg,
        "rect",
        {
            "class": "hidden",
            "x": _n(x),
            "y": _n(y),
            "width": _n(room),
            "height": _n(height),
            "fill": HIDDEN_FILL,
            "stroke": MUTED,
            "stroke-dasharray": "4 3",
        },
    )
    _text(svg, x + 6, y + height / 2 + font_px * 0.35, HIDDEN, font_px, fill=INK, cls="hidden-note")


def _text(
    svg: ET.Element,
    x: float,
    y: float,
    content: str,
    font_px: int,
    *,
    weight: str | None = None,
    fill: str = INK,
    anchor: str | None = None,
    cls: str,
    value: int | None = None,
) -> None:
    attributes = {"class": cls, "x": _n(x), "y": _n(y), "font-size": str(font_px), "fill": fill}
    if weight:
        attributes["font-weight"] = weight
    if anchor:
        attributes["text-anchor"] = anchor
    if value is not None:
        attributes["data-value"] = str(value)
    ET.SubElement(svg, "text", attributes).text = content


def _n(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _clean(text: str) -> str:
    """One line of XML-safe text: line breaks and tabs become spaces, what XML cannot hold goes."""
    return " ".join(_NOT_XML.sub("", text).split())


def _em(char: str) -> float:
    """A glyph's width in em, on the generous side for a sans-serif font."""
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 1.0
    if unicodedata.combining(char) or unicodedata.category(char) == "Cf":
        return 0.0
    return 0.62


def _width(text: str, font_px: int, bold: bool = False) -> float:
    return sum(_em(c) for c in text) * font_px * (1.08 if bold else 1.0)


def _fit(text: str, room: float, font_px: int = LABEL_PX) -> str:
    """The text, cut and ended with an ellipsis where it would be wider than room (bold)."""
    if _width(text, font_px, bold=True) <= room:
        return text
    while text and _width(text + "…", font_px, bold=True) > room:
        text = text[:-1]
    return text.rstrip() + "…"


def _fit_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _wrap(text: str, room: float, font_px: int) -> Sequence[str]:
    """Up to MAX_TITLE_LINES lines at word boundaries (a word too long is cut); the last line
    ends in an ellipsis when text is left over."""
    lines: list[str] = []
    words = text.split(" ") if text else [""]
    while words and len(lines) < MAX_TITLE_LINES:
        line = words.pop(0)
        while words and _width(f"{line} {words[0]}", font_px, bold=True) <= room:
            line += " " + words.pop(0)
        if _width(line, font_px, bold=True) > room:  # one word wider than the line
            cut = _fit(line, room, font_px)[:-1]
            words.insert(0, line[len(cut.rstrip()) :])
            line = cut.rstrip()
        lines.append(line)
    if words:
        lines[-1] = _fit(lines[-1] + " " + " ".join(words), room, font_px)
    return lines
