"""What a text field may hold: Unicode text in NFC, without control characters.

A control character (Unicode's category Cc: C0 such as NUL, DEL, and C1) has no place in a
name, a title or an id. PostgreSQL refuses NUL in text (the request failed there) while
SQLite stored it, so one database answered 500 and the other kept what the first could not.
They are refused with the field named; a field that documents line breaks (MultilineText)
keeps them, as "\\n". (Half of a surrogate pair, which JSON can spell but nothing can
encode, never gets here: pydantic refuses it as not a string.) Format characters (category
Cf) stay: emoji sequences and right-to-left names need them.

Text is stored in NFC, so that the same name typed on two keyboards is one string: "é" as
one code point, never as "e" plus a combining accent.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


@dataclass(frozen=True)
class WithPattern:
    """Adds a pattern to a string's JSON schema only: the validator functions check it, with
    a message that names the character and its position."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


def _refuse(text: str, allowed: str = "") -> None:
    for position, char in enumerate(text):
        if unicodedata.category(char) == "Cc" and char not in allowed:
            raise ValueError(f"contains a control character (U+{ord(char):04X}) at position {position}")


def plain_text(text: str) -> str:
    """One line of text: no control characters at all; NFC."""
    if text.isascii() and text.isprintable():  # the common case, without a per-character loop
        return text
    _refuse(text)
    return unicodedata.normalize("NFC", text)


def multiline_text(text: str) -> str:
    """Text with line breaks: CRLF and CR become LF; no other control character; NFC."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    _refuse(text, allowed="\n")
    return unicodedata.normalize("NFC", text)


# The same rules as JSON Schema patterns, for the OpenAPI document (Cc is U+0000-U+001F and
# U+007F-U+009F); tests/lbs/test_text.py checks that each pattern and its function agree.
PLAIN_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"
MULTILINE_PATTERN = r"^[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
TEXT_PATTERNS = (PLAIN_PATTERN, MULTILINE_PATTERN)
PlainText = Annotated[str, AfterValidator(plain_text), WithPattern(PLAIN_PATTERN)]
MultilineText = Annotated[str, AfterValidator(multiline_text), WithPattern(MULTILINE_PATTERN)]
