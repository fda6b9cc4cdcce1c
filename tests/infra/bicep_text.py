"""Just enough Bicep reading for static checks: comments out, balanced blocks, top-level entries.

Not a Bicep parser (no bicep CLI here: it downloads a binary). It understands single-quoted strings
(with `${...}` interpolation and `\\'` escapes) and `//` / `/* */` comments, which is what it takes to
find the matching brace of a block and the `key: value` lines directly inside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator


def strip_comments(text: str) -> str:
    """Remove comments, keeping strings (a `//` inside 'https://...' is not a comment)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            j = _string_end(text, i)
            out.append(text[i:j])
            i = j
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index just past the closing quote of the string opening at `start`."""
    if text.startswith("'''", start):  # multi-line string, no escapes
        end = text.find("'''", start + 3)
        return len(text) if end < 0 else end + 3
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "'":
            return i + 1
        i += 1
    return len(text)


def block_after(text: str, anchor: str) -> str:
    """The text inside the first balanced `{ ... }` or `[ ... ]` that follows the regex `anchor`."""
    match = re.search(anchor, text)
    if match is None:
        raise AssertionError(f"anchor {anchor!r} not found")
    opening = re.compile(r"[{\[]").search(text, match.end())
    if opening is None:
        raise AssertionError(f"no block after {anchor!r}")
    start = opening.start()
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "'":
            i = _string_end(text, i)
            continue
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    raise AssertionError(f"unbalanced block after {anchor!r}")


def blocks(text: str, anchor: str) -> Iterator[tuple[re.Match[str], str]]:
    """Every match of `anchor` with the balanced block that follows it."""
    for match in re.finditer(anchor, text):
        yield match, block_after(text[match.start() :], re.escape(match.group(0)))


def entries(block: str) -> dict[str, str]:
    """`key: value` pairs at the top level of a block (values of nested blocks are kept as text)."""
    result: dict[str, str] = {}
    depth, line_start, i = 0, 0, 0
    while i <= len(block):
        ch = block[i] if i < len(block) else "\n"
        if ch == "'":
            i = _string_end(block, i)
            continue
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == "\n" and depth == 0:
            line = block[line_start:i].strip()
            key, sep, value = line.partition(":")
            key = key.strip().strip("'")
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                result[key] = value.strip()
            line_start = i + 1
        i += 1
    return result


def string_literal(expr: str) -> str | None:
    """The value of a plain string literal without interpolation, else None."""
    m = re.fullmatch(r"'((?:[^'\\$]|\\.|\$(?!\{))*)'", expr.strip())
    return None if m is None else m.group(1)


def params(text: str) -> dict[str, str | None]:
    """`param name type = default` -> {name: default expression or None}."""
    found: dict[str, str | None] = {}
    for m in re.finditer(r"^param\s+(\w+)\s+\w+(?:\s*=\s*(.+))?$", text, re.MULTILINE):
        found[m.group(1)] = m.group(2).strip() if m.group(2) else None
    return found
