"""Strict parsers for what strangers send us: JSON bodies, ids and short identifiers.

Every HTTP route reads its body through `parse_json` and its ids through `parse_id`, so junk is refused
with a `BadInput` that says what is wrong (answered 4xx), never guessed at and never left to blow up
later as a 5xx: deep nesting, duplicate keys, NaN, lone surrogates, NUL, non-ASCII digits, ids out of
range. Stdlib only: imported on every request path.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32  # real payloads nest 4-5 levels (v2 custom fields); the C scanner would recurse ~1000
MAX_ID = 2**63 - 1  # Pipedrive ids are 64-bit at most (Table Storage Int64)
_CANONICAL_ID = re.compile(r"[1-9][0-9]{0,18}")  # ASCII only: str.isdigit() also takes "١٢٣" and "１２３"
_BAD_CHARS = re.compile(r"[\x00\ud800-\udfff]")  # NUL and lone surrogates (invalid Unicode in text)
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII without space: ids, correlation ids, GUIDs


class BadInput(Exception):
    """The client sent something we refuse; `lines` name each problem (safe to echo: no secret values)."""

    def __init__(self, message: str, *, lines: list[str] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.lines = lines or [message]
        self.status = status

    def __str__(self) -> str:
        return self.message


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes, *, what: str = "body") -> Any:
    """The JSON value of `body` (strict UTF-8, RFC 8259); BadInput on anything else."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{what} is not UTF-8 text", lines=[f"{what}: not UTF-8"]) from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RecursionError:
        raise BadInput(f"{what} is nested too deeply", lines=[f"{what}: nested deeper than {MAX_DEPTH}"]) from None
    except _DuplicateKey as exc:
        where = f"{what}: the key {printable(exc.key)!r} appears twice in one object"
        raise BadInput(f"{what} is ambiguous: {where}", lines=[where]) from None
    except ValueError as exc:  # JSONDecodeError, and int() past sys.get_int_max_str_digits
        reason = str(exc).splitlines()[0][:120]
        raise BadInput(f"{what} is not valid JSON ({reason})", lines=[f"{what}: not JSON"]) from None
    check_tree(data, what)
    return data


def check_tree(data: Any, what: str = "body") -> None:
    """Refuse nesting past MAX_DEPTH and strings (keys too) holding NUL or a lone surrogate."""
    stack: list[tuple[Any, str, int]] = [(data, what, 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadInput(f"{what} is nested too deeply", lines=[f"{what}: nested deeper than {MAX_DEPTH}"])
        if isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"{where} key")
                stack.append((item, f"{where}.{printable(key)[:40]}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))


def _check_text(value: str, where: str) -> None:
    found = _BAD_CHARS.search(value)
    if found:
        what = "NUL" if found.group() == "\x00" else "a lone surrogate"
        raise BadInput(f"{where} holds {what}", lines=[f"{where}: text holds {what}"])


def clean_text(value: str) -> str:
    """`value` with lone surrogates replaced by "?": safe to encode, quote into a URL or render."""
    return value.encode("utf-8", "replace").decode("utf-8") if _BAD_CHARS.search(value) else value


def printable(value: object, limit: int = 40) -> str:
    """A short, loggable rendering of a client value (never the whole of a huge or binary one)."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_id(value: Any, where: str, *, strings: bool = True) -> int:
    """A positive 64-bit id from a JSON integer, or (when `strings`) its canonical ASCII decimal text."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif strings and isinstance(value, str) and _CANONICAL_ID.fullmatch(value):
        number = int(value)
    elif value is None:
        raise BadInput(f"{where}: missing", lines=[f"{where}: missing"])
    else:
        expected = "an integer id or its decimal digits" if strings else "an integer id"
        line = f"{where}: expected {expected} (1..2^63-1), got {printable(value)}"
        raise BadInput(line, lines=[line])
    if not 1 <= number <= MAX_ID:
        line = f"{where}: {printable(number)} is not an id (expected 1..2^63-1)"
        raise BadInput(line, lines=[line])
    return number


def parse_token(value: Any, where: str, *, max_length: int, required: bool = False) -> str | None:
    """An identifier a client names things with (correlation id, event id, entity): printable ASCII, bounded."""
    if value is None:
        if required:
            raise BadInput(f"{where}: missing", lines=[f"{where}: missing"])
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _TOKEN.fullmatch(value) or len(value) > max_length:
        line = f"{where}: expected 1-{max_length} printable ASCII characters, got {printable(value)}"
        raise BadInput(line, lines=[line])
    return value
