"""What Pipedrive already holds, for the master push: a product by its code, an organization by the D365
account on its custom field, and a product's current prices.

Neither API has idempotency keys, so a push finds before it creates. Two ways, one interface:

- Per record (an event's push): the Search API (exact match, paced by its own 10 / 2 s limit) finds
  records indexed long ago; its index may lag a write, so a direct read of the records changed within
  `search_lag` seconds (`updated_since`, 500 a page) backs it. Together they see every record.
- Listed once (the full diff): every product / organization is read once, 500 a page, the first
  time a record needs it, into memory, and kept current with our own writes. A catalogue then costs
  a few list pages instead of one search per record, and an item released in two companies is
  read from Pipedrive once. A miss on a record another worker of ours may have written since the
  listing (its lock row is not new) is confirmed by a read of what changed since the last read
  (`updated_since`; one call serves every miss waiting at the time), so it is adopted, not duplicated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from connector.errors import NotFoundError
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.models import Organization, Product

DEFAULT_SEARCH_LAG = 3600.0  # how far back the direct read looks (the index's lag is UNCONFIRMED)
CLOCK_SKEW = timedelta(seconds=5)  # Pipedrive's update_time is whole seconds, its clock not ours
T = TypeVar("T")


class _Once(Generic[T]):
    """One load shared by every caller, including those that ask while it is in flight."""

    def __init__(self, load: Callable[[], Awaitable[T]]) -> None:
        self._load = load
        self._task: asyncio.Task[T] | None = None

    async def get(self) -> T:
        if self._task is None:
            self._task = asyncio.ensure_future(self._load())
        try:
            return await asyncio.shield(self._task)
        except BaseException:
            if self._task.done() and self._task.exception() is not None:
                self._task = None  # a failed load is tried again by the next caller
            raise


def _fold(value: str) -> str:
    return value.strip().casefold()


def _best_product(candidates: list[Product], code: str) -> Product | None:
    """Pipedrive compares codes case-insensitively: an exact spelling wins, then the oldest record."""
    live = sorted((p for p in candidates if not p.is_deleted), key=lambda p: p.id)
    exact = [p for p in live if p.code == code]
    best = exact or live
    return best[0] if best else None


class PipedriveDirectory:
    """Products and organizations as Pipedrive has them now; one per push (or per diff run)."""

    def __init__(
        self,
        client: PipedriveClient,
        *,
        listed: bool = False,
        org_field: str | None = None,
        search_lag: float = DEFAULT_SEARCH_LAG,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self.listed = listed
        self._org_field = org_field  # hash key of the organization field holding the D365 account
        self._lag = search_lag
        self._clock = clock
        self._products: dict[int, Product] = {}  # current state: listed, read or written by us
        self._codes: dict[str, set[int]] = {}  # folded code -> product ids (listed mode)
        self._accounts: dict[str, set[int]] = {}  # folded account -> organization ids (listed mode)
        self._product_list = _Once(self._list_products)
        self._org_list = _Once(self._list_organizations)
        self._deltas = {"product": _Delta(self._product_delta), "organization": _Delta(self._org_delta)}

    # --- products ---------------------------------------------------------------------------------

    async def product_by_code(self, code: str, *, confirm_miss: bool = True) -> Product | None:
        if self.listed:
            await self._product_list.get()
            best = _best_product([self._products[i] for i in self._codes.get(_fold(code), ())], code)
            if best is None and confirm_miss:
                await self._deltas["product"].fresh()
                best = _best_product([self._products[i] for i in self._codes.get(_fold(code), ())], code)
            return best
        found = await self._client.search_product_by_code(code)
        if found is not None and not found.is_deleted:
            self.remember_product(found)
            return found
        recent = [p async for p in self._client.iter_products(updated_since=self._since())]
        best = _best_product([p for p in recent if p.code is not None and _fold(p.code) == _fold(code)], code)
        if best is not None:
            self.remember_product(best)
        return best

    async def product(self, product_id: int) -> Product | None:
        """The product as it is now (None: gone or deleted); read once, then kept current by our writes."""
        if self.listed:
            await self._product_list.get()
        current = self._products.get(product_id)
        if current is None and not self.listed:
            try:
                current = await self._client.get_product(product_id)
            except NotFoundError:
                return None
            self.remember_product(current)
        return current if current is not None and not current.is_deleted else None

    def remember_product(self, product: Product) -> None:
        old = self._products.get(product.id)
        if old is not None and old.code is not None:
            self._codes.get(_fold(old.code), set()).discard(product.id)
        self._products[product.id] = product
        if product.code is not None:
            self._codes.setdefault(_fold(product.code), set()).add(product.id)

    async def _list_products(self) -> None:
        self._deltas["product"].since = self._clock() - CLOCK_SKEW
        async for product in self._client.iter_products():
            self.remember_product(product)

    async def _product_delta(self, since: datetime) -> None:
        async for product in self._client.iter_products(updated_since=since):
            self.remember_product(product)

    # --- organizations ----------------------------------------------------------------------------

    async def organization_by_account(self, account: str, *, confirm_miss: bool = True) -> int | None:
        """The oldest live organization whose account field equals `account` (trimmed, case-insensitive)."""
        if self._org_field is None:
            raise ValueError("PipedriveDirectory: no organization account field")
        if self.listed:
            await self._org_list.get()
            if not self._accounts.get(_fold(account)) and confirm_miss:
                await self._deltas["organization"].fresh()
            ids = self._accounts.get(_fold(account), set())
            return min(ids) if ids else None
        found = await self._client.find_organizations_by_field(self._org_field, account)
        if found:
            return min(org.id for org in found)
        recent = self._client.iter_organizations(updated_since=_rfc3339(self._since()), custom_fields=self._org_field)
        hits = [org.id async for org in recent if not org.is_deleted and self._account_of(org) == _fold(account)]
        return min(hits) if hits else None

    def remember_organization(self, org_id: int, account: str) -> None:
        self._accounts.setdefault(_fold(account), set()).add(org_id)

    def forget_organization(self, org_id: int) -> None:
        for ids in self._accounts.values():
            ids.discard(org_id)

    def _account_of(self, org: Organization) -> str:
        assert self._org_field is not None
        return _fold(str(org.custom_fields.get(self._org_field) or ""))

    async def _list_organizations(self) -> None:
        self._deltas["organization"].since = self._clock() - CLOCK_SKEW
        await self._org_delta(None)

    async def _org_delta(self, since: datetime | None) -> None:
        assert self._org_field is not None
        filters: dict[str, Any] = {"custom_fields": self._org_field}
        if since is not None:
            filters["updated_since"] = _rfc3339(since)
        async for org in self._client.iter_organizations(**filters):
            self.forget_organization(org.id)
            account = self._account_of(org)
            if account and not org.is_deleted:
                self._accounts.setdefault(account, set()).add(org.id)

    def _since(self) -> datetime:
        return self._clock() - timedelta(seconds=self._lag)


class _Delta:
    """Reads of what changed since the previous read; one read serves every caller waiting when it starts."""

    def __init__(
        self, read: Callable[[datetime], Awaitable[None]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read = read
        self._clock = clock
        self.since = datetime.now(UTC) - CLOCK_SKEW  # set again when the full listing starts
        self._covered = float("-inf")  # monotonic start of the last completed read
        self._task: asyncio.Task[None] | None = None

    async def fresh(self) -> None:
        """Return once a read that started after this call has completed."""
        asked = self._clock()
        while self._covered < asked:
            task = self._task
            if task is None or task.done():  # reads run one after another, so `since` only moves forward
                task = self._task = asyncio.ensure_future(self._run(self._clock()))
            await asyncio.shield(task)

    async def _run(self, started: float) -> None:
        since, wall = self.since, datetime.now(UTC)
        await self._read(since)
        self.since = wall - CLOCK_SKEW
        self._covered = started


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
