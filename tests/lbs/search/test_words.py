"""Folding and splitting: accents, case and compatibility forms are ignored; queries parse."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbs.search.words import MAX_QUERY_WORDS, TextQuery, fold, merchant_words, words_of

ACCENTS = ["\u0301", "\u0300", "\u0308", "\u0302", "\u030a", "\u0327", "\u0303", "\u030c"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Café Ümlaut", ["cafe", "umlaut"]),
        ("CAFÉ", ["cafe"]),
        ("Cafe\u0301", ["cafe"]),  # decomposed input folds like composed
        ("Straße", ["strasse"]),
        ("İstanbul", ["istanbul"]),
        ("Øresund Smørrebrød", ["oresund", "smorrebrod"]),
        ("Łódź", ["lodz"]),
        ("\ufb01sh \uff21\uff22\uff23", ["fish", "abc"]),  # ligature and full-width letters
        ("McDonald's", ["mcdonalds"]),
        ("McDonald\u2019s", ["mcdonalds"]),
        ("fast_food 24/7", ["fast", "food", "24", "7"]),
        ("東京 ラーメン", ["東京", "ラーメン"]),
        ("  ", []),
    ],
)
def test_words_are_folded_and_split(text: str, words: list[str]) -> None:
    assert words_of(text) == words


def test_a_merchant_has_its_name_and_its_category_in_words() -> None:
    words = merchant_words("Café Aalto", "cafe")
    assert words["aalto"] == 2 and words["cafe"] == 3 and words["cafes"] == 1  # name 2, category 1
    assert merchant_words("Burger Bar", "fast_food").keys() >= {"burger", "bar", "fast", "food"}
    assert merchant_words("X", "fitness").keys() >= {"gym", "gyms", "fitness"}
    assert merchant_words("X", "other", ["Pizza", "wood-fired"]).keys() >= {"pizza", "wood", "fired"}


@given(st.text(max_size=30))
def test_folding_twice_changes_nothing(text: str) -> None:
    assert fold(fold(text)) == fold(text)
    assert words_of(" ".join(words_of(text))) == words_of(text)


@given(
    st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8), min_size=1, max_size=4),
    st.data(),
)
def test_accents_and_case_do_not_change_the_words(plain: list[str], data: st.DataObject) -> None:
    def dress(word: str) -> str:
        out = ""
        for char in word:
            char = char.upper() if data.draw(st.booleans()) else char
            out += char + data.draw(st.sampled_from(["", "", *ACCENTS]))
        return unicodedata.normalize(data.draw(st.sampled_from(["NFC", "NFD"])), out)

    assert words_of(" ".join(dress(w) for w in plain)) == plain


def test_a_query_ends_its_last_word_with_a_space_or_a_mark() -> None:
    assert TextQuery.parse("Pizza hel") == TextQuery(("pizza", "hel"), last_is_prefix=True)
    assert TextQuery.parse("pizza ") == TextQuery(("pizza",), last_is_prefix=False)
    assert TextQuery.parse("pizza.") == TextQuery(("pizza",), last_is_prefix=False)
    assert TextQuery.parse("Cafe\u0301") == TextQuery(("cafe",), last_is_prefix=True)
    assert TextQuery.parse("pizza bar pizza") == TextQuery(("bar", "pizza"), last_is_prefix=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("!!", "at least one letter or digit"),
        ("x" * 101, "at most 100 characters"),
        (" ".join(f"w{i}" for i in range(MAX_QUERY_WORDS + 1)), "at most 8 different words"),
    ],
)
def test_a_query_without_words_or_too_long_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TextQuery.parse(text)
