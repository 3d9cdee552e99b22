"""A deal's reason says what ends when: today's window, or the deal itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from lbs.services.deal_offers import DealAt, DealRecord
from lbs.services.relevance import deal_reason

HELSINKI = "Europe/Helsinki"


def reason(at: str, valid_until: str, windows: list[dict[str, Any]], price: int = 700) -> dict[str, Any]:
    deal = DealRecord(
        id=7,
        merchant_id=1,
        title="Lunch",
        kind="percent_off",
        currency="EUR",
        list_price_minor=1000,
        deal_price_minor=price,
        quantity_total=None,
        quantity_claimed=0,
        valid_from=datetime.fromisoformat("2026-11-01T00:00:00+02:00"),
        valid_until=datetime.fromisoformat(valid_until),
        ended_at=None,
        windows=windows,
        status="published",
        payment="at_counter",
        refund_policy="anytime",
    )
    offer = DealAt.of(deal, HELSINKI, datetime.fromisoformat(at))
    assert offer.claimable
    return deal_reason(offer)


LUNCH = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "11:00", "end": "14:40"}]
NIGHTS = [{"days": ["fri"], "start": "22:00", "end": "02:00"}]


@pytest.mark.parametrize(
    ("at", "valid_until", "windows", "text"),
    [
        # Issue 17: a daily window closing at 14:40 of a deal that runs 18 more days.
        ("2026-11-25T12:00:00+02:00", "2026-12-13T23:00:00+02:00", LUNCH,
         "\N{MINUS SIGN}30 % until 14:40 today; deal runs to 13 Dec"),
        # A deal ending at midnight (valid_until is its first instant out) runs to the day before.
        ("2026-11-25T12:00:00+02:00", "2026-12-14T00:00:00+02:00", LUNCH,
         "\N{MINUS SIGN}30 % until 14:40 today; deal runs to 13 Dec"),
        # A window past midnight.
        ("2026-11-27T23:00:00+02:00", "2026-12-13T23:00:00+02:00", NIGHTS,
         "\N{MINUS SIGN}30 % until 02:00 tomorrow; deal runs to 13 Dec"),
        # The deal's last window: what ends is the deal.
        ("2026-11-25T12:00:00+02:00", "2026-11-25T14:40:00+02:00", LUNCH,
         "\N{MINUS SIGN}30 % until 14:40 today"),
        # No windows: the deal runs to its end, 18 days later, and says its date.
        ("2026-11-25T12:00:00+02:00", "2026-12-13T23:00:00+02:00", [],
         "\N{MINUS SIGN}30 % until 13 Dec 23:00"),
        ("2026-12-30T12:00:00+02:00", "2027-01-02T10:00:00+02:00", [],
         "\N{MINUS SIGN}30 % until 2 Jan 2027 10:00"),
    ],
)  # fmt: skip
def test_the_text_names_what_ends(
    at: str, valid_until: str, windows: list[dict[str, Any]], text: str
) -> None:
    assert reason(at, valid_until, windows)["text"] == text


def test_the_reason_gives_both_ends_in_the_merchants_zone() -> None:
    found = reason("2026-11-25T10:00:00+00:00", "2026-12-13T23:00:00+02:00", LUNCH)
    assert found == {
        "code": "deal",
        "deal_id": 7,
        "discount_pct": 30,
        "ends_at": "2026-11-25T14:40:00+02:00",
        "deal_ends_at": "2026-12-13T23:00:00+02:00",
        "text": "\N{MINUS SIGN}30 % until 14:40 today; deal runs to 13 Dec",
    }


def test_a_deal_without_a_discount_is_a_deal() -> None:
    found = reason("2026-11-25T12:00:00+02:00", "2026-11-25T14:40:00+02:00", LUNCH, price=1000)
    assert found["text"] == "deal until 14:40 today"
