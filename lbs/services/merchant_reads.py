"""What a read sends of a merchant or a place: the fields a client named (fields=), with the
hours computed only when they are named."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lbs.services.hours import merchant_hours
from lbs.services.week_hours import merchant_week


def pick(representation: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """The representation's fields among ``names``, in its order."""
    return {key: value for key, value in representation.items() if key in names}


def with_fields(
    place: Mapping[str, Any], names: frozenset[str], at: datetime, merchant: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``place`` trimmed to ``names``, with the week of hours at ``at`` of ``merchant`` (the
    place itself by default) when they are named: computed only then."""
    if "hours" in names:
        place = {**place, "hours": merchant_week(merchant or place, at)}
    return pick(place, names)


def merchant_read(merchant: Mapping[str, Any], names: frozenset[str], at: datetime) -> dict[str, Any]:
    """The merchant with whether it is open at ``at`` and that week's hours, as ``names`` ask."""
    wants_now = bool(names & {"open_now", "closes_at", "next_open_at"})
    hours_now = merchant_hours(merchant, at).public() if wants_now else {}
    return with_fields({**merchant, **hours_now}, names, at)
