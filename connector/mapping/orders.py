"""Won deal + its product lines -> one D365 sales order plan (header + lines), exactly.

Amounts go through Decimal from the JSON text Pipedrive sent (a float's repr is its shortest
round-trip text), so 0.1 stays 0.1; prices, taxes and totals are `money.py`'s. Every line is checked
before raising, so one MappingError lists every problem with the deal and line it concerns and what
to change. Every line sets SalesPriceQuantity (price unit) 1, so D365 never divides our price by an
item's own price unit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from connector.d365.models import SalesOrderHeaderCreate, SalesOrderLineCreate
from connector.mapping.config import MappingConfig
from connector.mapping.errors import MappingError
from connector.mapping.money import (
    LineMoney,
    deal_value_problem,
    line_money,
    line_sum_problem,
    round_amount,
    show,
    to_decimal,
)
from connector.mapping.sections import MAX_ORDER_NUMBER
from connector.pipedrive.models import Deal, DealProduct, Product

_NO_CURRENCY = "XXX"  # ISO 4217 "no currency": placeholder while collecting problems, never sent


class OrderPlan(BaseModel):
    """What to create in D365 for one deal: the header and its lines, in the deal's line order."""

    model_config = ConfigDict(frozen=True)

    legal_entity: str
    reference: str
    header: SalesOrderHeaderCreate
    lines: list[SalesOrderLineCreate]
    # The Pipedrive deal-product id behind each line (same order as `lines`), for audit trails.
    deal_product_ids: list[int]
    # The Pipedrive deal value and the net total D365's line amounts must add up to (`money.order_total_check`).
    deal_value: Decimal | None = None
    expected_total: Decimal = Decimal(0)


def legal_entity_for(deal: Deal, cfg: MappingConfig) -> str:
    """The deal's D365 company: its pipeline's entry in `legal_entity.by_pipeline`, else the default."""
    by_pipeline = cfg.legal_entity.by_pipeline
    if deal.pipeline_id is not None and deal.pipeline_id in by_pipeline:
        return by_pipeline[deal.pipeline_id]
    return cfg.legal_entity.default


def order_reference(deal: Deal, cfg: MappingConfig) -> str:
    """The deal's reference on the order (e.g. "PD-123"): how a rebuilt job finds an existing order."""
    values: dict[str, Any] = {
        "deal_id": deal.id,
        "pipeline_id": deal.pipeline_id,
        "org_id": deal.org_id,
        "owner_id": deal.owner_id,
    }
    template = cfg.order.reference_template
    missing = [k for k, v in values.items() if v is None and "{" + k + "}" in template]
    if missing:
        raise MappingError(
            f"deal {deal.id}: the order reference template {template!r} needs {', '.join(missing)}, "
            "which the deal does not have; set it in Pipedrive or change order.reference_template",
            deal_id=deal.id,
        )
    return template.format(**values)


def order_number(deal: Deal, cfg: MappingConfig) -> str | None:
    """The SalesOrderNumber to create with (`numbering: from_deal`); None = D365's number sequence."""
    template = cfg.order.number_template
    if cfg.order.numbering != "from_deal" or template is None:
        return None
    number = template.format(deal_id=deal.id, pipeline_id=deal.pipeline_id, org_id=deal.org_id, owner_id=deal.owner_id)
    if len(number) > MAX_ORDER_NUMBER:
        raise MappingError(
            f"deal {deal.id}: order number {number!r} is longer than D365's {MAX_ORDER_NUMBER} characters; "
            "shorten order.number_template",
            deal_id=deal.id,
        )
    return number


def line_positions(deal_products: list[DealProduct], frozen: list[int] | None = None) -> list[int]:
    """Each deal product's stable line identity (`CustomersLineNumber`, 1-based), frozen at the first attempt.

    `frozen` is the deal-product id order recorded when the order was first planned; products added to
    the deal since come after it, so a retry that adds missing lines never renumbers (or doubles) one.
    """
    order = list(frozen or [])
    order += [p.id for p in deal_products if p.id not in order]
    return order


def build_order(
    deal: Deal,
    lines: list[tuple[DealProduct, Product | None]],
    customer_account: str,
    cfg: MappingConfig,
    *,
    legal_entity: str | None = None,
    dimensions: str = "",
    reference: str | None = None,
    line_order: list[int] | None = None,
) -> OrderPlan:
    """Map the deal and its product lines (in the order given) to a sales order plan.

    `lines` pairs each deal product with its Pipedrive product (None when it no longer exists);
    `dimensions` is the display string from `resolve_dimensions`; `legal_entity` and `reference` default
    to the deal's own (a flow passes the ones frozen on its job); `line_order` is the frozen deal-product
    order behind each line's `CustomersLineNumber` (see `line_positions`). Item numbers are the products'
    codes; whether they exist in D365 is the flow's check (it needs the API).
    """
    company = legal_entity or legal_entity_for(deal, cfg)
    problems: list[str] = []
    currency = _currency(deal, problems)
    reference = reference or order_reference(deal, cfg)
    identity = line_positions([item for item, _ in lines], line_order)
    if not customer_account.strip():
        problems.append(f"deal {deal.id}: no D365 customer account to order for")

    planned: list[SalesOrderLineCreate] = []
    source_ids: list[int] = []
    net_total = Decimal(0)
    deal_totals: list[Decimal] = []  # each enabled line's total as Pipedrive computes the deal value from it
    for position, (item, product) in enumerate(lines, start=1):
        if cfg.lines.skip_disabled and not item.is_enabled:
            continue
        number = identity.index(item.id) + 1
        planned_line = _line(deal, position, number, item, product, currency, company, dimensions, cfg,
                             problems)  # fmt: skip
        if planned_line is not None:
            line, money = planned_line
            planned.append(line)
            source_ids.append(item.id)
            net_total += round_amount(money.net_amount, cfg)
            if item.is_enabled:
                given = to_decimal(item.sum, "sum", []) if item.sum is not None else None
                deal_totals.append(money.pipedrive_total if given is None else given)
    if not lines or (not planned and not problems):
        problems.append(f"deal {deal.id}: has no enabled products; add the products sold to the deal in Pipedrive")
    if not problems:
        value_problem = deal_value_problem(deal, deal_totals, cfg)
        if value_problem:
            problems.append(value_problem)
    if problems:
        raise MappingError(problems, deal_id=deal.id)

    header_fields: dict[str, Any] = {
        "data_area_id": company,
        "ordering_customer_account_number": customer_account.strip(),
        "currency_code": currency,
        "sales_order_number": order_number(deal, cfg),
        "default_shipping_site_id": cfg.lines.site,
        "default_shipping_warehouse_id": cfg.lines.warehouse,
        "default_ledger_dimension_display_value": dimensions or None,
    }
    if cfg.order.reference_field == "CustomersOrderReference":
        header_fields["customers_order_reference"] = reference
    else:
        header_fields["customer_requisition_number"] = reference
    header = SalesOrderHeaderCreate(**header_fields)
    return OrderPlan(
        legal_entity=company, reference=reference, header=header, lines=planned, deal_product_ids=source_ids,
        deal_value=to_decimal(deal.value, "value", []) if deal.value is not None else None, expected_total=net_total,
    )  # fmt: skip


def _currency(deal: Deal, problems: list[str]) -> str:
    code = (deal.currency or "").strip()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        problems.append(
            f"deal {deal.id}: currency {deal.currency!r} is not a 3-letter currency code; set the deal's currency"
        )
        return _NO_CURRENCY
    return code.upper()


def _line(
    deal: Deal,
    position: int,
    number: int,
    item: DealProduct,
    product: Product | None,
    currency: str,
    company: str,
    dimensions: str,
    cfg: MappingConfig,
    problems: list[str],
) -> tuple[SalesOrderLineCreate, LineMoney] | None:
    where = f"deal {deal.id} line {position}"
    name = (product.name if product else None) or item.name or f"#{item.product_id}"
    found: list[str] = []
    if product is None:
        found.append(f"product {name!r} (id {item.product_id}) no longer exists in Pipedrive; replace the line")
        code = ""
    else:
        code = product.code or ""
        if not code.strip():
            found.append(f"product {name!r} has no code; set its code to a D365 item number")
    if item.product_variation_id is not None:
        found.append(
            f"product {name!r} uses variation {item.product_variation_id}, which the connector cannot map "
            "to a D365 item; use a product whose code is the variant's item number"
        )
    if item.currency and currency != _NO_CURRENCY and item.currency.strip().upper() != currency:
        found.append(f"is in {item.currency} but the deal is in {currency}; use one currency")

    quantity = to_decimal(item.quantity, "quantity", found)
    price = to_decimal(item.item_price, "price", found)
    discount = to_decimal(item.discount, "discount", found)
    if quantity is not None and quantity <= 0:
        found.append(f"quantity {show(quantity)} must be more than 0")
    if price is not None and price < 0:
        found.append(f"price {show(price)} must not be negative")
    money: LineMoney | None = None
    if quantity is not None and price is not None and discount is not None and not found:
        money = line_money(item, quantity, price, discount, cfg, found)
    if money is not None:
        mismatch = line_sum_problem(item, money, cfg)
        if mismatch:
            found.append(mismatch)

    problems.extend(f"{where}: {text}" for text in found)
    if found or quantity is None or money is None:
        return None
    line = SalesOrderLineCreate(
        data_area_id=company,
        item_number=code,
        ordered_sales_quantity=quantity,
        sales_price=money.sales_price,
        sales_price_quantity=Decimal(1),
        line_discount_percentage=money.discount_pct,
        line_discount_amount=money.discount_per_unit,
        sales_unit_symbol=cfg.lines.unit,
        shipping_site_id=cfg.lines.site,
        shipping_warehouse_id=cfg.lines.warehouse,
        customers_line_number=number,
        default_ledger_dimension_display_value=(dimensions or None) if cfg.dimensions.on_lines else None,
    )
    return line, money
