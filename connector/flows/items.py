"""Deal lines -> (deal product, Pipedrive product) pairs whose codes are D365 items of the legal entity.

Product codes are D365 `ItemNumber`s, compared as F&O compares them (case-insensitive) and never
trimmed or otherwise altered (`" RFI-TEST-001"` is a real item number). Known items come from the id
map; the rest are checked with as few D365 queries as the URL length allows (usually one), so the
calls per order do not grow with the number of lines.
"""

from __future__ import annotations

import time
import weakref
from datetime import timedelta

from connector.d365 import odata
from connector.d365.client import D365Client
from connector.mapping.errors import MappingError
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.models import Deal, DealProduct, Product
from connector.state.store import StateStore
from connector.state.tables import now as tables_now

ITEM_KIND = "item"
# A code checked against D365 is trusted this long: in this process from memory (a warm order reads
# nothing for its items), from the id map across processes; then it is checked again (an item can be
# deleted or stop being released). Forget one at once with `forget_item` (a D365 change of the item).
ITEM_CACHE_SECONDS = 3600.0
ITEM_RECHECK_AFTER = timedelta(hours=24)
# per state store (one per runtime): item key -> monotonic time until which it is trusted
_KNOWN: weakref.WeakKeyDictionary[StateStore, dict[str, float]] = weakref.WeakKeyDictionary()


def forget_item(state: StateStore, legal_entity: str, code: str) -> None:
    _KNOWN.get(state, {}).pop(item_key(legal_entity, code), None)


async def unknown_items(state: StateStore, legal_entity: str, codes: list[str]) -> list[str]:
    """The codes not known to be released items of the company (memory, then the id map, each with its age)."""
    unknown: list[str] = []
    now = time.monotonic()
    known = _KNOWN.setdefault(state, {})
    for code in codes:
        key = item_key(legal_entity, code)
        if known.get(key, 0.0) > now:
            continue
        entry = await state.idmap.get(ITEM_KIND, key)
        fresh = entry is not None and (entry.updated is None or tables_now() - entry.updated < ITEM_RECHECK_AFTER)
        if fresh:
            known[key] = now + ITEM_CACHE_SECONDS
        else:
            unknown.append(code)
    return unknown


def item_key(legal_entity: str, code: str) -> str:
    return f"{legal_entity}:{code}"


def sorted_lines(deal_products: list[DealProduct]) -> list[DealProduct]:
    """The deal's lines in Pipedrive's order (order_nr, then id): the order they are planned in."""
    return sorted(deal_products, key=lambda p: (p.order_nr if p.order_nr is not None else 0, p.id))


async def resolve_items(
    deal: Deal,
    deal_products: list[DealProduct],
    legal_entity: str,
    *,
    pipedrive: PipedriveClient,
    d365: D365Client,
    state: StateStore,
) -> list[tuple[DealProduct, Product | None]]:
    ordered = sorted_lines(deal_products)
    products = await pipedrive.get_products([p.product_id for p in ordered])
    lines = [(item, products.get(item.product_id)) for item in ordered]

    codes = {product.code for _, product in lines if product is not None and product.code and product.code.strip()}
    unknown = await unknown_items(state, legal_entity, sorted(codes))
    if unknown:
        found = await existing_items(d365, unknown, legal_entity)
        for code, item_number in found.items():
            await state.idmap.put(ITEM_KIND, item_key(legal_entity, code), item_number)
            _KNOWN.setdefault(state, {})[item_key(legal_entity, code)] = time.monotonic() + ITEM_CACHE_SECONDS
        missing = set(unknown) - set(found)
        problems = [
            f"deal {deal.id} line {position}: product {product.name!r} has code {product.code!r}, which is not "
            f"a released product in legal entity {legal_entity!r}; set the product's code to a D365 item number "
            "or release the item in that company"
            for position, (_, product) in enumerate(lines, start=1)
            if product is not None and product.code in missing
        ]
        if problems:
            raise MappingError(problems, deal_id=deal.id)
    return lines


async def existing_items(d365: D365Client, codes: list[str], legal_entity: str) -> dict[str, str]:
    """Which of `codes` are released products in the company: code -> D365's own ItemNumber."""
    found: dict[str, str] = {}
    rows = d365.iter_matching(
        "ReleasedProductsV2", "ItemNumber", codes, select=["dataAreaId", "ItemNumber"], legal_entity=legal_entity
    )
    async for row in rows:
        number = str(row.get("ItemNumber", ""))
        found.update({code: number for code in codes if odata.same_key_value(number, code)})
    return found
