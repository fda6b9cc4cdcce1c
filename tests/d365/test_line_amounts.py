"""D365 line amounts from what the mapping sends: price unit 1 and net prices give the deal's net total.

The item is priced per 100 (`SalesPriceQuantity` 100), as F&O items often are; a line that leaves the
price unit unset takes the item's and D365 divides the price by it.
"""

from __future__ import annotations

from decimal import Decimal

from connector.d365.client import D365Client
from connector.d365.models import SalesOrderLine
from connector.dev.sandbox.d365 import D365Sandbox
from connector.mapping.money import order_total_check
from connector.mapping.orders import build_order
from tests.mapping.factories import cfg, deal, line, product

SCREWS = {"dataAreaId": "usmf", "ItemNumber": "SCREW/M4", "SalesUnitSymbol": "pcs", "SalesPrice": 12,
          "SalesPriceQuantity": 100}  # fmt: skip


async def _create(d365: D365Client, payloads: list[dict[str, object]]) -> list[SalesOrderLine]:
    header = await d365.create("SalesOrderHeadersV2", {"dataAreaId": "usmf", "OrderingCustomerAccountNumber": "US-001"})
    created = []
    for payload in payloads:
        body = {**payload, "SalesOrderNumber": header["SalesOrderNumber"]}
        created.append(SalesOrderLine.model_validate(await d365.create("SalesOrderLines", body)))
    return created


async def test_price_unit_one_and_net_prices_give_the_planned_total(d365_sim: D365Sandbox, d365: D365Client) -> None:
    d365_sim.seed({"released_products": [SCREWS]})
    items = [
        line(1, quantity=500, item_price=0.244, tax=22, tax_method="inclusive", sum=122),  # Estonian VAT inside
        line(2, id=1002, quantity=3, item_price=100, tax=20, tax_method="inclusive", sum=300),
    ]
    plan = build_order(deal(value=422), [(items[0], product(code="SCREW/M4")), (items[1], product(2, code="P-100"))],
                       "US-001", cfg())  # fmt: skip
    created = await _create(d365, [ln.to_payload() for ln in plan.lines])
    assert [ln.line_amount for ln in created] == [Decimal("100.00"), Decimal("250.00")]
    record, reason = order_total_check(plan.deal_value, plan.expected_total, [ln.line_amount for ln in created], cfg())
    assert reason is None and record["order_total"] == "350" and record["deal_value"] == "422"


async def test_without_price_unit_d365_divides_by_the_items_and_the_check_fails(
    d365_sim: D365Sandbox, d365: D365Client
) -> None:
    d365_sim.seed({"released_products": [SCREWS]})
    plan = build_order(deal(value=60), [(line(quantity=5, item_price=12, sum=60), product(code="SCREW/M4"))],
                       "US-001", cfg())  # fmt: skip
    payload = plan.lines[0].to_payload()
    del payload["SalesPriceQuantity"]  # what the connector sent before: D365 takes the item's 100
    created = await _create(d365, [payload])
    assert created[0].line_amount == Decimal("0.6")
    _, reason = order_total_check(plan.deal_value, plan.expected_total, [created[0].line_amount], cfg())
    assert reason is not None and "differs from the deal's net total 60" in reason
