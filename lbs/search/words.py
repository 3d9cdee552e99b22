"""Words as search compares them: folded (accents stripped, case folded) and split.

A merchant's name, its category's words and its tags (none are stored yet: ready for
imported ones such as OpenStreetMap's cuisine) become a set of words; a query
becomes words too, folded the same way, so that "Café" is found by "cafe", "CAFÉ" and
"café", and "Åbo" by "abo". Folding is Unicode's own: NFKD splits a letter from its
accents (and compatibility forms such as "ﬁ" or full-width letters into plain ones),
the combining marks are dropped, then casefold (which also turns "ß" into "ss"). A few
Latin letters carry their stroke in the letter itself and do not decompose (ø, æ, ł, đ,
þ): they are spelled out as a keyboard without them would type them.

Words are the runs of letters and digits left; apostrophes inside a word are dropped
first, so "McDonald's" is one word, "mcdonalds". Everything else (spaces, punctuation,
underscores, symbols) separates words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from lbs.categories import NAMES

# Letters NFKD leaves whole, as they are usually typed without their stroke or ligature.
_SPELLED = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "\u0131": "i",
        "ħ": "h",
        "ŧ": "t",
    }
)
# ', U+2019 right single quotation mark, U+02BC modifier letter apostrophe, `, U+00B4 acute
_APOSTROPHES = re.compile("(?<=\\w)['\u2019\u02bc`\u00b4](?=\\w)")
_ASCII_WORD = re.compile(r"[a-z0-9]+")

# How long a query may be and how many words it may have (documented in docs/api.md).
MAX_QUERY_CHARS = 100
MAX_QUERY_WORDS = 8


def _fold_once(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_SPELLED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """The text as it is compared: accents stripped, case folded, stroked letters spelled out."""
    if text.isascii():
        return text.lower()  # casefold() and lower() agree on ASCII
    # Twice: folding can uncover another foldable letter (a compatibility form's accent).
    return _fold_once(_fold_once(text))


def _is_word_char(char: str) -> bool:
    # Letters, digits, and the marks that are part of a letter (Indic vowel signs) rather
    # than an accent on it (those are gone after folding).
    return char.isalnum() or unicodedata.category(char)[0] == "M"


def _split(folded: str) -> list[str]:
    folded = _APOSTROPHES.sub("", folded)
    if folded.isascii():
        return _ASCII_WORD.findall(folded)
    return "".join(c if _is_word_char(c) else " " for c in folded).split()


def words_of(text: str) -> list[str]:
    """The words of a text, folded, in order (repeats kept)."""
    return _split(fold(text))


def category_words(category: str) -> frozenset[str]:
    """What a category is called: its slug's words and its names ("fast_food": fast, food,
    fast-food place(s)); "cafe" is also "café", "cafés", which fold to cafe, cafes."""
    one, many = NAMES.get(category, ("", ""))
    return frozenset(words_of(category) + words_of(one) + words_of(many))


# Where a merchant's word comes from: its name, or its category or tags.
IN_NAME = 2
IN_OTHER = 1


def merchant_words(name: str, category: str, tags: Iterable[str] = ()) -> dict[str, int]:
    """Each word of a merchant with where it occurs (IN_NAME | IN_OTHER bits)."""
    found = dict.fromkeys(words_of(name), IN_NAME)
    for word in _CATEGORY_WORDS.get(category) or category_words(category):
        found[word] = found.get(word, 0) | IN_OTHER
    for tag in tags:
        for word in words_of(tag):
            found[word] = found.get(word, 0) | IN_OTHER
    return found


_CATEGORY_WORDS = {category: category_words(category) for category in NAMES}


@dataclass(frozen=True)
class TextQuery:
    """A search's words, each of which a merchant must have; the last may be the beginning
    of a word (type-ahead) unless the query ended with a space."""

    words: tuple[str, ...]
    last_is_prefix: bool = True

    @classmethod
    def parse(cls, text: str) -> TextQuery:
        """Words of ``text``; raises ValueError naming what is wrong (for a 400 on ``q``)."""
        if len(text) > MAX_QUERY_CHARS:
            raise ValueError(f"at most {MAX_QUERY_CHARS} characters (got {len(text)})")
        folded = fold(text)
        words = _split(folded)
        if not words:
            raise ValueError("needs at least one letter or digit")
        # A word given twice asks nothing more: kept once, where it last occurs.
        unique = tuple(dict.fromkeys(reversed(words)))[::-1]
        if len(unique) > MAX_QUERY_WORDS:
            raise ValueError(f"at most {MAX_QUERY_WORDS} different words (got {len(unique)})")
        # Typing goes on inside the last word until a space or a punctuation mark ends it.
        return cls(unique, last_is_prefix=_is_word_char(folded[-1]))

    def __str__(self) -> str:
        return " ".join(self.words) + ("" if self.last_is_prefix else " ")
