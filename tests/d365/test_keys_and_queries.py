"""Keys and queries a real F&O accepts: lookups by $filter, URL length, case, spaces, stable paging.

Item numbers follow the recorded real record `" RFI-TEST-001"` (leading space) and the public
write-ups' `105E11/74N`; the simulator answers a key path with a singly-encoded slash 404, like F&O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connector.d365 import odata
from connector.d365.client import D365Client
from connector.dev.sandbox.d365 import D365Sandbox
from connector.errors import PermanentError
from connector.flows.items import existing_items

from .conftest import Waits, make_client

RESERVED = ["105E11/74N", "BS\\01", "A+B", "R&D-1", "DIM:4", "100%OFF", "STAR*1", "Q?1", "NO#7"]


class Recording(httpx.AsyncHTTPTransport):
    """Keeps every URL the client sends, exactly as encoded on the wire."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return await super().handle_async_request(request)


def _item(number: str) -> dict[str, str]:
    return {"dataAreaId": "usmf", "ItemNumber": number, "ProductType": "Item", "SalesUnitSymbol": "pcs"}


@pytest.fixture
async def recorded(d365_sim: D365Sandbox, waits: Waits) -> AsyncIterator[tuple[D365Client, Recording]]:
    transport = Recording(verify=d365_sim.ssl_context())
    async with make_client(d365_sim, waits, transport=transport) as client:
        yield client, transport


async def test_reserved_characters_and_leading_space_are_found(
    d365_sim: D365Sandbox, recorded: tuple[D365Client, Recording]
) -> None:
    d365, wire = recorded
    d365_sim.seed({"released_products": [_item(n) for n in [*RESERVED, "STARX1"]]})
    for number in [*RESERVED, " RFI-TEST-001"]:
        found = await d365.find_item(number, "usmf")
        assert found is not None and found.item_number == number
    assert await d365.find_item("RFI-TEST-001", "usmf") is None  # never trimmed
    assert await d365.find_item(" rfi-test-001", "usmf") is not None  # case-insensitive, as F&O compares
    # No lookup puts a key in the path, and every read is ordered by the key.
    gets = [u for u in wire.urls if "/data/ReleasedProductsV2" in u]
    assert gets and all("/data/ReleasedProductsV2?" in u and "$orderby=dataAreaId%20asc,ItemNumber%20asc" in u
                        for u in gets)  # fmt: skip


async def test_forty_item_check_splits_by_url_length(
    d365_sim: D365Sandbox, recorded: tuple[D365Client, Recording]
) -> None:
    d365, wire = recorded
    # 20 characters is ItemNumber's real maximum; reserved characters triple in length when encoded.
    numbers = [f"KIT/{n:02d}+&:#?%-XYZ-ABCD"[:20] for n in range(40)]
    d365_sim.seed({"released_products": [_item(n) for n in numbers[::2]]})
    found = await existing_items(d365, [*numbers, " RFI-TEST-001", "d0001"], "usmf")
    assert found == {**{n: n for n in numbers[::2]}, " RFI-TEST-001": " RFI-TEST-001", "d0001": "D0001"}
    gets = [u for u in wire.urls if "/data/ReleasedProductsV2" in u]
    assert all(len(u) <= 2048 for u in gets)
    assert 2 <= len(gets) <= 3  # split by length, not one request per item nor a fixed 40 per query
    assert max(len(u) for u in gets) > 1500  # each query is filled up to the limit


async def test_a_too_long_single_value_fails_with_a_reason(d365: D365Client) -> None:
    with pytest.raises(PermanentError, match="too long"):
        await existing_items(d365, ["%" * 1000], "usmf")


async def test_writes_by_key_refuse_unroutable_values(d365: D365Client) -> None:
    with pytest.raises(PermanentError, match="cannot take in a URL path"):
        await d365.update("ReleasedProductsV2", {"dataAreaId": "usmf", "ItemNumber": "105E11/74N"}, {"SalesPrice": 1})


async def test_paged_reads_are_ordered_by_the_key(d365_sim: D365Sandbox, waits: Waits) -> None:
    transport = Recording(verify=d365_sim.ssl_context())
    async with D365Sandbox(page_size=1) as small, make_client(small, waits, transport=transport) as d365:
        transport.urls.clear()
        accounts = [c.customer_account async for c in d365.iter_customers("usmf")]
        names = await d365.product_names("usmf")
        matches = await d365.find_customers_by_name("O'Brien & Sons", "USA", "usmf")
    assert accounts == sorted(accounts) and len(accounts) > 1
    assert names and [m.customer_account for m in matches] == ["US-002"]
    first_pages = [u for u in transport.urls if "skip=" not in u and "/data/" in u]
    keys = {"CustomersV3": "CustomerAccount%20asc", "ReleasedProductCreationsV2": "ItemNumber%20asc"}
    assert len(first_pages) == 3
    for url in first_pages:
        entity_set = url.split("/data/")[1].split("?")[0]
        assert "$orderby=" in url and keys[entity_set] in url.split("$orderby=")[1], url


async def test_paging_without_orderby_is_unstable_under_writes_but_ours_is_not(waits: Waits) -> None:
    async with D365Sandbox(page_size=1) as small, make_client(small, waits) as d365:
        query = odata.Query(filter="dataAreaId eq 'usmf'", select=("CustomerAccount",), cross_company=True)
        unordered: list[str] = []
        async for page in d365.iter_pages("CustomersV3", query):
            unordered += [r["CustomerAccount"] for r in page]
            if len(unordered) == 1:  # someone edits the first customer while we page
                await d365.update(
                    "CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": unordered[0]}, {"AddressCity": "X"}
                )
        assert len(unordered) != len(set(unordered))  # the edited row came round again, another was skipped
        ordered: list[str] = []
        async for customer in d365.iter_customers("usmf"):
            ordered.append(customer.customer_account)
            if len(ordered) == 1:
                await d365.update(
                    "CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": ordered[0]}, {"AddressCity": "Y"}
                )
        assert ordered == ["US-001", "US-002"] and set(unordered) < set(ordered)
