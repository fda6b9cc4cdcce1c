"""Cursor paging (v2) and offset paging (v1), plus strict parsing of the common query parameters.

The v2 cursor is base64url JSON naming the first item of the next page, as in SPEC-v2's example
(`{"field":"id","fieldValue":7,"sortDirection":"asc","id":7}`), so pages stay stable while data changes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .envelope import bad_request

MAX_LIMIT = 500
DEFAULT_LIMIT = 100


def encode_cursor(field: str, value: Any, direction: str, item_id: int) -> str:
    raw = json.dumps({"field": field, "fieldValue": value, "sortDirection": direction, "id": item_id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise bad_request("cursor: not a valid cursor") from exc
    if not isinstance(data, dict) or not {"field", "fieldValue", "sortDirection", "id"} <= data.keys():
        raise bad_request("cursor: not a valid cursor")
    return data


def parse_limit(query: Mapping[str, str], maximum: int = MAX_LIMIT) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"limit: '{raw}' is not an integer") from exc
    if not 1 <= value <= maximum:
        raise bad_request(f"limit: must be between 1 and {maximum}")
    return value


def parse_int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request(f"{name}: '{raw}' is not an integer") from exc


def parse_ids(query: Mapping[str, str], name: str, maximum: int = 100) -> list[int] | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise bad_request(f"{name}: must be a comma-separated list of integers") from exc
    if not ids or len(ids) > maximum:
        raise bad_request(f"{name}: must list between 1 and {maximum} ids")
    return ids


def parse_bool(query: Mapping[str, str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):  # v2: "booleans strictly true/false" (migration guide)
        raise bad_request(f"{name}: '{raw}' is not a boolean")
    return raw == "true"


def parse_choice(query: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    raw = query.get(name, default)
    if raw not in choices:
        raise bad_request(f"{name}: must be one of {', '.join(choices)}")
    return raw


def _key(item: Mapping[str, Any], field: str) -> tuple[int, Any, int]:
    value = item.get(field)
    # None sorts first; the id breaks ties so the order is total.
    return (0, "", item["id"]) if value is None else (1, value, item["id"])


def cursor_page(
    items: Sequence[Mapping[str, Any]],
    query: Mapping[str, str],
    *,
    sort_fields: Sequence[str] = ("id", "update_time", "add_time"),
    maximum: int = MAX_LIMIT,
) -> tuple[list[Mapping[str, Any]], str | None]:
    """Sort, then cut one page at the cursor; returns the page and the next cursor (None at the end)."""
    limit = parse_limit(query, maximum)
    sort_by = parse_choice(query, "sort_by", sort_fields, "id")
    direction = parse_choice(query, "sort_direction", ("asc", "desc"), "asc")
    ordered = sorted(items, key=lambda item: _key(item, sort_by), reverse=direction == "desc")
    start = 0
    if query.get("cursor"):
        cursor = decode_cursor(query["cursor"])
        if cursor["field"] != sort_by or cursor["sortDirection"] != direction:
            raise bad_request("cursor: does not match sort_by/sort_direction")
        marker = _key({"id": cursor["id"], sort_by: cursor["fieldValue"]}, sort_by)
        start = next(
            (
                i
                for i, item in enumerate(ordered)
                if (_key(item, sort_by) >= marker if direction == "asc" else _key(item, sort_by) <= marker)
            ),
            len(ordered),
        )
    page = list(ordered[start : start + limit])
    nxt = ordered[start + limit] if start + limit < len(ordered) else None
    next_cursor = encode_cursor(sort_by, nxt.get(sort_by), direction, nxt["id"]) if nxt is not None else None
    return page, next_cursor


def offset_page(items: Sequence[Any], query: Mapping[str, str]) -> tuple[list[Any], dict[str, Any]]:
    """v1 offset paging: `additional_data.pagination` with `next_start` only when more items exist."""
    start = parse_int(query, "start") or 0
    if start < 0:
        raise bad_request("start: must not be negative")
    limit = parse_limit(query)
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return page, pagination
