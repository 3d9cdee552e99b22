"""The word index agrees with a brute-force scan of every merchant's words, across writes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbs.categories import CATEGORY_CODES
from lbs.search.word_index import WordIndex
from lbs.search.word_table import WordTableBuilder
from lbs.search.words import IN_NAME, TextQuery, merchant_words, words_of

# Few letters, so that random words and prefixes often meet; accents and case on top.
SYLLABLES = ["pi", "za", "ca", "fé", "Ca", "FÉ", "ü", "u", "ba", "r", "ø", "o", "ß", "ss", "1"]
word = st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=3).map("".join)
name = st.lists(word, min_size=1, max_size=3).map(" ".join)
category = st.sampled_from(list(CATEGORY_CODES))
query_text = st.tuples(st.lists(word, min_size=1, max_size=3).map(" ".join), st.sampled_from(["", " "])).map(
    "".join
)


def brute_force(merchants: dict[int, tuple[str, str]], query: TextQuery) -> dict[int, float]:
    """Every merchant matching query, with its score, by reading each one's words."""
    found = {}
    for merchant_id, (merchant_name, merchant_category) in merchants.items():
        words = merchant_words(merchant_name, merchant_category)
        total = 0
        for i, q in enumerate(query.words):
            prefix = query.last_is_prefix and i == len(query.words) - 1
            weights = [
                (2 if where & IN_NAME else 0) + (2 if w == q else 1)
                for w, where in words.items()
                if w == q or (prefix and w.startswith(q))
            ]
            if not weights:
                break
            total += max(weights)
        else:
            found[merchant_id] = total / (4 * len(query.words))
    return found


def check(index: WordIndex, merchants: dict[int, tuple[str, str]], text: str) -> None:
    query = TextQuery.parse(text)
    matches = index.match(query)
    expected = brute_force(merchants, query)
    assert matches.ids.tolist() == sorted(expected)
    assert np.allclose(matches.scores, [expected[i] for i in sorted(expected)], rtol=0, atol=1e-12)


@settings(max_examples=150)
@given(
    st.dictionaries(st.integers(1, 400), st.tuples(name, category), max_size=40),
    st.lists(st.tuples(st.integers(1, 400), st.none() | st.tuples(name, category)), max_size=30),
    st.lists(query_text, min_size=1, max_size=5),
    st.booleans(),
)
def test_matches_are_those_of_a_brute_force_scan(
    snapshot: dict[int, tuple[str, str]],
    writes: list[tuple[int, tuple[str, str] | None]],
    queries: list[str],
    compact: bool,
) -> None:
    builder = WordTableBuilder()
    builder.add_all((m, merchant_words(*row)) for m, row in snapshot.items())
    index = WordIndex(builder.build())
    merchants = dict(snapshot)
    for text in queries:
        check(index, merchants, text)
    for merchant_id, row in writes:  # renames, new merchants, removals
        if row is None:
            index.remove(merchant_id)
            merchants.pop(merchant_id, None)
        else:
            index.upsert(merchant_id, merchant_words(*row))
            merchants[merchant_id] = row
    if compact:
        index.compact()
    for text in queries:
        check(index, merchants, text)


def test_a_prefix_matches_every_word_it_begins_and_a_space_ends_it() -> None:
    builder = WordTableBuilder()
    builder.add_all(
        [
            (1, merchant_words("Pizzeria Napoli", "restaurant")),
            (2, merchant_words("Pizza Hut", "fast_food")),
            (3, merchant_words("Café Pizzicato", "cafe")),
            (4, merchant_words("Bar Centrale", "bar")),
        ]
    )
    index = WordIndex(builder.build())
    assert index.match(TextQuery.parse("piz")).ids.tolist() == [1, 2, 3]
    assert index.match(TextQuery.parse("pizza")).ids.tolist() == [2]
    assert index.match(TextQuery.parse("PIZZA ")).ids.tolist() == [2]
    assert index.match(TextQuery.parse("cafe piz")).ids.tolist() == [3]
    assert index.match(TextQuery.parse("bar")).ids.tolist() == [4]
    assert index.match(TextQuery.parse("zzz")).ids.tolist() == []
    found = index.match(TextQuery.parse("ca"))
    assert found.ids.tolist() == [3] and found.scores.tolist() == [0.75]  # begins a word of the name
    index.upsert(4, merchant_words("Pizza Bar", "bar"))
    assert index.match(TextQuery.parse("pizza")).ids.tolist() == [2, 4]
    index.remove(2)
    assert index.match(TextQuery.parse("pizza")).ids.tolist() == [4]
    assert words_of("Pizza Bar") == ["pizza", "bar"]
