"""Following an API's pages, one shape for both: Pipedrive cursors and D365 `@odata.nextLink`s.

Each page names the next one (a cursor, a link) or none at the end. A server that names a page
already read would keep a reader looping forever, so that is a ProtocolError, checked here once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from connector.errors import ProtocolError

Item = TypeVar("Item")
Token = TypeVar("Token", bound=Hashable)


@dataclass(frozen=True)
class Page(Generic[Item, Token]):
    items: list[Item]
    next: Token | None  # what fetches the next page; None: this is the last


async def follow_pages(
    fetch: Callable[[Token], Awaitable[Page[Item, Token]]], first: Token, *, what: str
) -> AsyncIterator[list[Item]]:
    """Each page's items, fetched lazily: `fetch(first)`, then `fetch(next)` while a page names one."""
    token, seen = first, {first}
    while True:
        page = await fetch(token)
        yield page.items
        if page.next is None:
            return
        if page.next in seen:
            raise ProtocolError(f"{what}: the next page named is one already read; refusing to loop")
        seen.add(page.next)
        token = page.next
