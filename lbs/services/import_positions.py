"""Positions of an import file that look like latitude and longitude swapped.

A [lat, lon] pair written where [lon, lat] belongs (GeoJSON's order) still validates
whenever the latitude is within ±90, so it is caught by where it lands (docs/operations.md):

- uninhabited: the position is at sea or in Antarctica (its time zone is a nautical
  ``Etc/GMT±N`` one or ``Antarctica/…``) while the swapped one is on land elsewhere
  (Helsinki's 60.17 N 24.94 E written [60.17, 24.94] lands in the Gulf of Oman);
- an outlier: with three rows or more, it is over OUTLIER_M from the file's median
  position while the swapped one is within OUTLIER_M of it (one row of a city's file
  written the other way round).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from lbs.geo.distance import great_circle_m
from lbs.geo.timezones import timezone_at

OUTLIER_M = 100_000.0


@dataclass(frozen=True)
class SwapSuspect:
    index: int  # into the positions given
    reason: str


def _uninhabited(lat: float, lon: float) -> bool:
    return timezone_at(lat, lon).startswith(("Etc/", "Antarctica/"))


def swap_suspects(positions: Sequence[tuple[float, float]]) -> list[SwapSuspect]:
    """The (lat, lon) positions that look swapped, each with why, in words."""
    centre = (median(p[0] for p in positions), median(p[1] for p in positions)) if positions else (0.0, 0.0)
    suspects = []
    for i, (lat, lon) in enumerate(positions):
        if abs(lon) > 90:
            continue  # swapped, it would not be a position at all
        if _uninhabited(lat, lon) and not _uninhabited(lon, lat):
            here, swapped = timezone_at(lat, lon), timezone_at(lon, lat)
            reason = f"there it is at sea or uninhabited ({here}), while swapped it is in {swapped}"
        elif len(positions) >= 3 and (
            great_circle_m(lat, lon, *centre) > OUTLIER_M >= great_circle_m(lon, lat, *centre)
        ):
            far_km = great_circle_m(lat, lon, *centre) / 1000
            reason = f"{far_km:,.0f} km from the file's other merchants, while swapped it is among them"
        else:
            continue
        suspects.append(SwapSuspect(i, reason))
    return suspects
