"""A warm order re-checks nothing it already knows: items come from memory or the id map (with an age after
which D365 is asked again), so its calls are the deal's reads and the order write."""

from __future__ import annotations

from datetime import timedelta

import pytest

import connector.flows.items as items
from connector.state.tables import encode_key, now
from tests.fixtures.stack import E2E


def contoso_deal(deal_id: int) -> dict[str, object]:
    return {"id": deal_id, "title": f"Contoso repeat {deal_id}", "org_id": 1, "person_id": 1, "pipeline_id": 1,
            "stage_id": 2, "owner_id": 1, "currency": "USD", "status": "open",
            "products": [{"product_id": 1, "item_price": 1250, "quantity": 1},
                         {"product_id": 7, "item_price": 85, "quantity": 3}]}  # fmt: skip


def item_checks(e2e: E2E, mark: int) -> int:
    return sum(1 for r in e2e.stack.d365.requests()[mark:] if "ReleasedProductsV2" in r.path)


async def test_a_warm_order_reads_no_item_or_customer_again(e2e: E2E) -> None:
    e2e.stack.pipedrive.seed({"deals": [contoso_deal(150), contoso_deal(151)]})
    await e2e.win(150)
    await e2e.drain()
    assert len(e2e.orders("PD-150")) == 1
    pd_mark, d_mark = len(e2e.stack.pipedrive.requests()), len(e2e.stack.d365.requests())
    await e2e.win(151)
    await e2e.drain()
    assert len(e2e.orders("PD-151")) == 1
    assert item_checks(e2e, d_mark) == 0
    assert not [r for r in e2e.stack.d365.requests()[d_mark:] if "CustomersV3" in r.path]
    routes = {f"{r['method']} {r['route']}" for r in e2e.stack.pipedrive.requests()[pd_mark:]}
    assert {"GET /api/v2/deals/{id}", "GET /api/v2/deals/{id}/products", "GET /api/v2/products"} <= routes
    assert not {"GET /api/v2/products/{id}", "GET /api/v2/products/search"} & routes


async def test_an_item_known_for_longer_than_the_recheck_age_is_checked_again(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(items, "ITEM_CACHE_SECONDS", 0.0)  # no memory: the id map's age decides
    e2e.stack.pipedrive.seed({"deals": [contoso_deal(160), contoso_deal(161), contoso_deal(162)]})
    await e2e.win(160)
    await e2e.drain()
    mark = len(e2e.stack.d365.requests())
    await e2e.win(161)
    await e2e.drain()
    assert item_checks(e2e, mark) == 0  # fresh in the id map
    table = await e2e.rt.state.idmap._table.client()
    old = now() - items.ITEM_RECHECK_AFTER - timedelta(minutes=1)
    async for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(items.ITEM_KIND)}):
        await table.upsert_entity({**row, "Updated": old})
    mark = len(e2e.stack.d365.requests())
    await e2e.win(162)
    await e2e.drain()
    assert item_checks(e2e, mark) == 1  # aged: one query checks both items again
    assert len(e2e.orders("PD-162")) == 1
