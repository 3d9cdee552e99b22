"""Text fields: NFC, no control characters; and no request model lets one through."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import lbs.app  # noqa: F401  # every module with a request model, imported
from lbs.api.responses import Out
from lbs.text import MULTILINE_PATTERN, PLAIN_PATTERN, multiline_text, plain_text


def test_plain_text_is_nfc_and_refuses_every_control_character() -> None:
    assert plain_text("Kahvila Sävy") == "Kahvila Sävy"
    assert plain_text(unicodedata.normalize("NFD", "Sävy")) == "Sävy"
    assert plain_text("👩\u200d🍳 Keittiö") == "👩\u200d🍳 Keittiö"  # a joiner (Cf) in an emoji stays
    for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]:
        with pytest.raises(ValueError, match=f"U\\+{code:04X}"):
            plain_text(f"a{chr(code)}b")


def test_multiline_text_keeps_line_breaks_as_lf_only() -> None:
    assert multiline_text("one\r\ntwo\rthree\nfour") == "one\ntwo\nthree\nfour"
    with pytest.raises(ValueError, match="U\\+0009"):
        multiline_text("one\ttwo")
    with pytest.raises(ValueError, match="U\\+0000"):
        multiline_text("one\n\x00")


def _models(base: type[BaseModel]) -> list[type[BaseModel]]:
    found = []
    for sub in base.__subclasses__():
        found.append(sub)
        found.extend(_models(sub))
    return found


REQUEST_MODELS = sorted(
    {
        m
        for m in _models(BaseModel)
        if m.__module__.startswith("lbs.")
        and not issubclass(m, Out)  # what the API answers
        and m.__name__ != "Problem"
    },
    key=lambda m: f"{m.__module__}.{m.__name__}",
)


def test_the_request_models_are_found() -> None:
    names = {m.__name__ for m in REQUEST_MODELS}
    assert {
        "MerchantFields",
        "MerchantChanges",
        "DealFields",
        "DealChanges",
        "ClientEvent",
        "NearbyParams",
    } <= names


@pytest.mark.parametrize("model", REQUEST_MODELS, ids=lambda m: m.__name__)
def test_no_request_field_accepts_a_control_character(model: type[BaseModel]) -> None:
    for name in model.model_fields:
        refused = 0
        for value in ("a\x00b", ["a\x00b"]):
            try:
                model.model_validate({name: value})
            except ValidationError as error:
                refused += any(e["loc"][:1] == (name,) for e in error.errors())
        assert refused == 2, f"{model.__name__}.{name} accepts a NUL character"


@given(st.text())
def test_the_documented_patterns_accept_exactly_what_the_functions_accept(text: str) -> None:
    for pattern, check in ((PLAIN_PATTERN, plain_text), (MULTILINE_PATTERN, multiline_text)):
        try:
            check(text)
            accepted = True
        except ValueError:
            accepted = False
        assert (re.fullmatch(pattern, text) is not None) == accepted, (pattern, text)
