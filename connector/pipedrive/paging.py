"""Cursor paging over Pipedrive v2 list endpoints, as an async iterator of raw items.

v2 lists take `cursor` and `limit` (max 500) and answer `additional_data.next_cursor`, null at the
end (docs/api-facts.md, Pipedrive §4). A repeated cursor is refused by connector.paging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from connector.errors import ProtocolError
from connector.paging import Page, follow_pages

MAX_LIMIT = 500
FetchPage = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def page_items(envelope: Mapping[str, Any], where: str, *, items_key: str | None = None) -> list[Any]:
    """The item list of one page; search endpoints nest it as `data.items`."""
    data = envelope.get("data")
    if items_key is not None and isinstance(data, dict):
        data = data.get(items_key)
    if data is None:
        return []
    if not isinstance(data, list):
        shape = f"data.{items_key}" if items_key else "data"
        raise ProtocolError(f"Pipedrive {where}: expected {shape} to be a list, got {type(data).__name__}")
    return data


def next_cursor(envelope: Mapping[str, Any], where: str) -> str | None:
    extra = envelope.get("additional_data")
    if extra is None:
        return None
    if not isinstance(extra, dict):
        raise ProtocolError(f"Pipedrive {where}: additional_data is not an object")
    cursor = extra.get("next_cursor")
    if cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str):
        raise ProtocolError(f"Pipedrive {where}: additional_data.next_cursor is not a string")
    return cursor


async def iter_cursor(
    fetch: FetchPage,
    params: Mapping[str, Any],
    *,
    where: str,
    limit: int = MAX_LIMIT,
    items_key: str | None = None,
) -> AsyncIterator[Any]:
    """Yield every item across pages; one request per page, fetched lazily."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")

    async def page(cursor: str | None) -> Page[Any, str | None]:
        query = {**params, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        envelope = await fetch(query)
        return Page(page_items(envelope, where, items_key=items_key), next_cursor(envelope, where))

    async for items in follow_pages(page, None, what=f"Pipedrive {where}"):
        for item in items:
            yield item
