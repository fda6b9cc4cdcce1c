"""Money on real deals end to end: a tax-inclusive deal becomes an order with exact net prices and price
unit 1; a recurring line or a deal-level discount fails the job with its reason and writes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.fixtures.stack import E2E


def _deal(deal_id: int, products: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"id": deal_id, "title": "Pumps, VAT inside", "org_id": 1, "pipeline_id": 1, "stage_id": 2, "owner_id": 1,
            "currency": "USD", "status": "open", "products": products, **fields}  # fmt: skip


async def test_inclusive_tax_deal_gives_net_prices_and_price_unit_one(e2e: E2E) -> None:
    e2e.stack.pipedrive.seed({"deals": [_deal(401, [
        {"product_id": 1, "item_price": 1523.78, "quantity": 1, "tax": 22, "tax_method": "inclusive"},  # 1249 net
        {"product_id": 3, "item_price": 120, "quantity": 3, "tax": 20, "tax_method": "inclusive"},
    ])]})  # fmt: skip
    await e2e.win(401)
    assert (await e2e.drain()).stats.outcomes == {"created": 1}
    [order] = e2e.orders("PD-401")
    lines = order["SalesOrderLines"]
    assert [Decimal(str(ln["SalesPrice"])) for ln in lines] == [Decimal("1249.00"), Decimal("100.00")]
    assert [ln["SalesPriceQuantity"] for ln in lines] == [1, 1]
    assert sum(Decimal(str(ln["LineAmount"])) for ln in lines) == Decimal("1549.00")


async def test_recurring_line_and_deal_discount_fail_before_any_d365_write(e2e: E2E) -> None:
    e2e.stack.pipedrive.seed({"deals": [_deal(402, [{"product_id": 3, "item_price": 100, "quantity": 1}])]})
    store = e2e.stack.pipedrive.sim.store
    store.tables["deal_product"][max(store.tables["deal_product"])]["billing_frequency"] = "monthly"
    e2e.stack.pipedrive.seed({"deals": [_deal(403, [{"product_id": 3, "item_price": 100, "quantity": 1}])]})
    store.get("deal", 403)["value"] = 90  # a 10 % deal-level discount lowered the value
    await e2e.win(402, 403)
    assert (await e2e.drain()).stats.outcomes == {"failed": 2}
    recurring, discounted = await e2e.job(402), await e2e.job(403)
    assert recurring is not None and "is a recurring product (billed monthly)" in (recurring.last_error or "")
    assert discounted is not None and "a deal-level discount" in (discounted.last_error or "")
    assert e2e.orders("PD-402") == e2e.orders("PD-403") == []
    assert e2e.d365_writes() == []
