"""One deal's order as planned against the order D365 holds (pure): customer, lines, totals.

Lines are matched by their line identity, `CustomersLineNumber` (the deal product's position), which the
build writes on every line; so a deleted line, an added one and a changed quantity each show as what
they are, not as a shifted list.
"""

from __future__ import annotations

from decimal import Decimal

from connector.d365.models import SalesOrderHeader, SalesOrderLine, SalesOrderLineCreate
from connector.mapping.config import MappingConfig
from connector.mapping.money import order_total_check, show
from connector.mapping.orders import OrderPlan


def compare_order(plan: OrderPlan, order: SalesOrderHeader, cfg: MappingConfig) -> list[str]:
    """Every difference between the plan and the order, one readable line each (empty: they agree)."""
    found: list[str] = []
    expected_customer = plan.header.ordering_customer_account_number
    if order.ordering_customer_account_number.casefold() != expected_customer.casefold():
        found.append(
            f"customer is {order.ordering_customer_account_number or '(none)'}, the deal's is {expected_customer}"
        )
    if plan.header.currency_code.upper() != (order.currency_code or "").upper():
        found.append(f"currency is {order.currency_code or '(none)'}, the deal's is {plan.header.currency_code}")
    found += _lines(plan.lines, order.lines)
    _, reason = order_total_check(plan.deal_value, plan.expected_total, [line.line_amount for line in order.lines], cfg)
    if reason is not None:
        total = sum((line.line_amount for line in order.lines), Decimal(0))
        found.append(f"order total {show(total)} differs from the deal's net total {show(plan.expected_total)}")
    return found


def _lines(planned: list[SalesOrderLineCreate], actual: list[SalesOrderLine]) -> list[str]:
    found: list[str] = []
    wanted = {line.customers_line_number or index: line for index, line in enumerate(planned, start=1)}
    have: dict[int, SalesOrderLine] = {}
    for line in actual:
        if line.customers_line_number in have:
            found.append(f"line {line.customers_line_number} is in the order twice")
        have[line.customers_line_number] = line
    for number, want in sorted(wanted.items()):
        got = have.get(number)
        if got is None:
            found.append(f"line {number} ({want.item_number}) is missing from the order")
            continue
        found += [f"line {number}: {text}" for text in _line(want, got)]
    for number in sorted(set(have) - set(wanted)):
        found.append(f"line {number} ({have[number].item_number}) is in the order but not on the deal")
    return found


def _line(want: SalesOrderLineCreate, got: SalesOrderLine) -> list[str]:
    found: list[str] = []
    if want.item_number.casefold() != got.item_number.casefold():
        found.append(f"item is {got.item_number}, the deal's is {want.item_number}")
    pairs = (
        ("quantity", want.ordered_sales_quantity, got.ordered_sales_quantity),
        ("price", want.sales_price, got.sales_price),
        ("discount %", want.line_discount_percentage, got.line_discount_percentage),
        ("discount per unit", want.line_discount_amount, got.line_discount_amount),
    )
    for what, expected, actual in pairs:
        if expected is not None and Decimal(expected) != Decimal(actual):
            found.append(f"{what} is {show(Decimal(actual))}, the deal's is {show(Decimal(expected))}")
    return found
