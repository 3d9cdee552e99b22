"""Checks that the map widget's labels can be read, from what Chromium laid out and styled:
each label's text lies inside its marker (a cluster's count inside its disc, every pill inside
its pill and its marker's box), and its colour on what is painted behind it has a WCAG 2
contrast ratio of at least 4.5:1 (AA for normal text)."""

from __future__ import annotations

import math
import re
from typing import Any

from playwright.sync_api import Page

MIN_CONTRAST = 4.5
SLACK_PX = 0.5  # sub-pixel rounding of the text's box

# For every label: its text's box (a Range over its contents), the box it must stay in, the
# marker's box, and the colours from the label up to the document, as computed.
_LABELS = """() => Array.from(document.querySelectorAll(
    '.lbs-count, .lbs-cluster-deals, .lbs-marker .lbs-badge')).map(label => {
    const rect = e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
    const range = document.createRange();
    range.selectNodeContents(label);
    const disc = label.classList.contains('lbs-count') ? label.closest('.lbs-cluster') : null;
    const fills = [];
    for (let e = label; e; e = e.parentElement) fills.push(getComputedStyle(e).backgroundColor);
    return {
      text: label.textContent, text_box: rect(range), own_box: rect(disc || label),
      marker_box: rect(label.closest('.leaflet-marker-icon')), round: disc !== null,
      border: disc ? parseFloat(getComputedStyle(disc).borderTopWidth) : 0,
      color: getComputedStyle(label).color, fills: fills,
    };
  })"""


def _rgba(css: str) -> tuple[float, float, float, float]:
    numbers = [float(n) for n in re.findall(r"[\d.]+", css)]
    assert len(numbers) in (3, 4), f"not an rgb() colour: {css}"
    return (numbers[0], numbers[1], numbers[2], numbers[3] if len(numbers) == 4 else 1.0)


RGB = tuple[float, float, float]


def _over(top: tuple[float, float, float, float], below: RGB) -> RGB:
    """``top`` painted with its alpha over ``below``."""
    a = top[3]
    return (top[0] * a + below[0] * (1 - a), top[1] * a + below[1] * (1 - a), top[2] * a + below[2] * (1 - a))


def _luminance(rgb: RGB) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(color: str, fills: list[str]) -> float:
    """The WCAG ratio of ``color`` on the fills from the label outwards, laid on white."""
    behind: RGB = (255.0, 255.0, 255.0)
    for fill in reversed(fills):
        behind = _over(_rgba(fill), behind)
    text = _over(_rgba(color), behind)
    light, dark = sorted((_luminance(text), _luminance(behind)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _inside(inner: list[float], outer: list[float]) -> bool:
    return (
        inner[0] >= outer[0] - SLACK_PX
        and inner[1] >= outer[1] - SLACK_PX
        and inner[2] <= outer[2] + SLACK_PX
        and inner[3] <= outer[3] + SLACK_PX
    )


def _inside_disc(box: list[float], disc: list[float], border: float) -> bool:
    """Every corner of the text's box within the disc's fill (inside its border)."""
    cx, cy = (disc[0] + disc[2]) / 2, (disc[1] + disc[3]) / 2
    radius = (disc[2] - disc[0]) / 2 - border
    corners = [(x, y) for x in (box[0], box[2]) for y in (box[1], box[3])]
    return all(math.hypot(x - cx, y - cy) <= radius + SLACK_PX for x, y in corners)


def assert_labels_legible(page: Page) -> list[dict[str, Any]]:
    """Every label drawn now is inside its marker and contrasted enough; returns them."""
    labels: list[dict[str, Any]] = page.evaluate(_LABELS)
    assert labels, "no label drawn"
    for label in labels:
        where = f"label {label['text']!r}"
        text, own, marker = label["text_box"], label["own_box"], label["marker_box"]
        assert label["text"].strip(), f"{where} is empty"
        assert _inside(text, own), f"{where}: text {text} outside {own}"
        assert _inside(own, marker), f"{where}: {own} outside the marker {marker}"
        if label["round"]:
            assert _inside_disc(text, own, label["border"]), f"{where}: text {text} leaves its disc {own}"
        ratio = contrast(label["color"], label["fills"])
        assert ratio >= MIN_CONTRAST, (
            f"{where}: contrast {ratio:.2f}, {label['color']} on {label['fills'][:3]}"
        )
    return labels
