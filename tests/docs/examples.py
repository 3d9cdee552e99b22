"""The shell examples of README.md and docs/*.md, and the outputs they document.

An example is one shell command in a ```sh block (continued lines, a multi-line quoted
argument or a here-document included). What it documents as its output is either
a comment that starts with ``# {`` or ``# [`` (after the command on its line, or on the
lines below it), or a ```json block that follows the ```sh block, for its last command.

Documented output is a pattern: ``…`` stands for what really varies. As a value
(``"total": …``) it matches anything; as an object's last member (``{"a": 1, …}``) it
says more members follow; as a list's element, ``…`` or ``"…"``, it stands for any
number of elements there (``[{"id": 1}, …]``); inside a string (``"lbs_mk_…"``) it
matches any run of characters. Objects match when
the members shown match (the others are not checked); lists match element by element.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ELLIPSIS = "…"
_ANY = "\x00any"
_MORE = "\x00more"
_ANY_MEMBER = "\x00member"
_FENCE = re.compile(r"^```(\w*)\s*$")
_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
_TRAILING_OUTPUT = re.compile(r"\s{2,}#\s*([\[{].*)$")


@dataclass
class Example:
    doc: str
    line: int
    command: str
    expected: str | None = None

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def _complete(command: str) -> bool:
    if command.rstrip().endswith("\\"):
        return False
    heredoc = _HEREDOC.search(command)
    if heredoc and not re.search(rf"^\s*{heredoc.group(1)}\s*$", command, re.M):
        return False
    try:
        shlex.split(command.split("<<")[0] if heredoc else command, comments=True)
    except ValueError:  # a quotation still open
        return False
    return True


def _whole(expected: str) -> bool:
    try:
        pattern(expected)
    except (ValueError, IndexError):
        return False
    return True


def _commands(doc: str, first_line: int, lines: list[str]) -> list[Example]:
    examples: list[Example] = []
    pending: list[str] = []
    start = 0
    for offset, line in enumerate(lines):
        number = first_line + offset
        stripped = line.strip()
        if not pending:
            if not stripped:
                continue
            if stripped.startswith("#"):
                comment = stripped.lstrip("#").strip()
                last = examples[-1] if examples else None
                if last is not None and last.expected is None and comment[:1] in ("[", "{"):
                    last.expected = comment
                elif last is not None and last.expected is not None and not _whole(last.expected):
                    last.expected += "\n" + comment
                continue
            start = number
        pending.append(line)
        command = "\n".join(pending)
        if _complete(command):
            example = Example(doc, start, command)
            trailing = _TRAILING_OUTPUT.search(pending[-1]) if not _HEREDOC.search(command) else None
            if trailing:
                example.expected = trailing.group(1)
            examples.append(example)
            pending = []
    if pending:
        raise ValueError(f"{doc}:{start}: a command is not complete at the end of its block")
    return examples


def examples_of(path: Path, root: Path) -> list[Example]:
    """The examples of one Markdown file: the commands of its ```sh blocks that call curl,
    with the variables those commands need (every command of a block runs, in order)."""
    doc = str(path.relative_to(root))
    found: list[Example] = []
    block: list[str] | None = None
    language = ""
    opened = 0
    last_sh: list[Example] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    between_blocks_blank = True
    for number, line in enumerate(lines, start=1):
        fence = _FENCE.match(line)
        if block is None:
            if fence:
                block, language, opened = [], fence.group(1), number
            elif line.strip():
                between_blocks_blank = False
            continue
        if not fence:
            block.append(line)
            continue
        if language == "sh":
            examples = _commands(doc, opened + 1, block)
            last_sh = examples if any("curl" in e.command for e in examples) else []
            found.extend(last_sh)
        elif language == "json" and last_sh and between_blocks_blank:
            last_sh[-1].expected = "\n".join(block)
            last_sh = []
        else:
            last_sh = []
        block, between_blocks_blank = None, True
    return found


def pattern(text: str) -> Any:
    """The documented output as a value to match against, ``…`` turned into wildcards."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    in_string = False
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\":
                out.append(text[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char in "[{":
            stack.append(char)
            out.append(char)
        elif char in "]}":
            stack.pop()
            out.append(char)
        elif char == ELLIPSIS:
            before = "".join(out).rstrip()[-1:]
            after = text[i + 1 :].lstrip()[:1]
            if stack and stack[-1] == "{" and before in "{," and after in "},":
                out.append(f"{json.dumps(_ANY_MEMBER)}: null")
            elif stack and stack[-1] == "[" and after == "]":
                out.append(json.dumps(_MORE))
            else:
                out.append(json.dumps(_ANY))
        else:
            out.append(char)
        i += 1
    return json.loads("".join(out))


def mismatches(expected: Any, actual: Any, at: str = "$") -> list[str]:
    """Where ``actual`` differs from the pattern ``expected`` (empty: it matches)."""
    if expected == _ANY:
        return []
    if isinstance(expected, str) and ELLIPSIS in expected:
        parts = map(re.escape, expected.split(ELLIPSIS))
        if isinstance(actual, str) and re.fullmatch(".*".join(parts), actual, re.S):
            return []
        return [f"{at}: {actual!r} does not match {expected!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{at}: {type(actual).__name__} where an object is documented"]
        problems = []
        for key, value in expected.items():
            if key == _ANY_MEMBER:
                continue
            if key not in actual:
                problems.append(f"{at}.{key}: documented, not served")
            else:
                problems += mismatches(value, actual[key], f"{at}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{at}: {type(actual).__name__} where a list is documented"]
        return _list_mismatches(expected, actual, at)
    if type(expected) is not type(actual) and not (
        isinstance(expected, int | float) and isinstance(actual, int | float)
        and not isinstance(expected, bool) and not isinstance(actual, bool)
    ):  # fmt: skip
        return [f"{at}: {actual!r} where {expected!r} is documented"]
    return [] if expected == actual else [f"{at}: {actual!r} where {expected!r} is documented"]


def _is_gap(element: Any) -> bool:
    return element in (_MORE, _ANY, ELLIPSIS)


def _list_mismatches(expected: list[Any], actual: list[Any], at: str) -> list[str]:
    """The elements shown, in order, with a gap (``…``) standing for any number of others."""
    shown = sum(not _is_gap(e) for e in expected)
    gaps = len(expected) - shown

    def fits(e: int, a: int) -> bool:
        if e == len(expected):
            return a == len(actual)
        if _is_gap(expected[e]):
            return any(fits(e + 1, k) for k in range(a, len(actual) + 1))
        return a < len(actual) and not mismatches(expected[e], actual[a]) and fits(e + 1, a + 1)

    if fits(0, 0):
        return []
    if not gaps and len(actual) == len(expected):  # name the first element that differs
        return [p for n, e in enumerate(expected) for p in mismatches(e, actual[n], f"{at}[{n}]")][:1]
    return [f"{at}: {len(actual)} elements do not fit the {shown} documented{' with gaps' if gaps else ''}"]
