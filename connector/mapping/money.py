"""Exact money for one deal line and for the whole order (pure, Decimal only).

Pipedrive prices a line as quantity x item_price minus its discount, with `tax_method` saying whether
`tax` (a percentage) is inside the price (`inclusive`), added on top (`exclusive`) or absent (`none`).
D365 sales order lines carry NET prices (tax is D365's own calculation from the customer's and item's
sales tax groups), so an inclusive price is turned into the exact net price, or the deal is refused,
per `lines.inclusive_tax`. The totals close the loop: the deal's value equals the sum of its lines'
Pipedrive totals (else there is a deal-level discount the order would not carry), and after the create
D365's line amounts must add up to what we planned (`order_total_check`).

Rounding: "beyond rounding" means more than one smallest currency unit (`lines.amount_decimals`) per line.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connector.mapping.config import MappingConfig
from connector.pipedrive.models import Deal, DealProduct

EXACT = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.DivisionByZero])
ONE_TIME = "one-time"


@dataclass(frozen=True)
class LineMoney:
    """One line in D365 terms (net price, discounts) and in Pipedrive terms (its total, its tax)."""

    sales_price: Decimal
    discount_pct: Decimal
    discount_per_unit: Decimal
    net_amount: Decimal  # the exact net line amount; D365's LineAmount is this rounded
    pipedrive_total: Decimal  # the line total as Pipedrive computes it (tax included unless `none`)
    tax: Decimal


def line_money(
    item: DealProduct, quantity: Decimal, price: Decimal, discount: Decimal, cfg: MappingConfig, found: list[str]
) -> LineMoney | None:
    """The line's D365 price and discounts; problems go to `found` (and None is returned)."""
    if item.billing_frequency not in (None, ONE_TIME):
        cycles = f" for {item.billing_frequency_cycles} cycles" if item.billing_frequency_cycles else ""
        found.append(
            f"is a recurring product (billed {item.billing_frequency}{cycles}); the connector creates one-time sales "
            "orders only, so the order total would not be the deal's; set the line to one-time in Pipedrive or "
            "enter the subscription in D365"
        )
        return None
    rate = to_decimal(item.tax, "tax", found)
    pct, per_unit = discount_parts(item, quantity, price, discount, cfg, found)
    if rate is None or found:
        return None
    if rate < 0:
        found.append(f"tax {show(rate)}% must not be negative")
        return None
    gross = EXACT.subtract(EXACT.multiply(quantity * price, 1 - pct / 100), quantity * per_unit)
    method = item.tax_method or ("none" if rate == 0 else None)
    if method is None:
        found.append(f"has tax {show(rate)}% but no tax method; set the line's tax to inclusive or exclusive")
        return None
    if method != "inclusive" or rate == 0:
        tax = EXACT.multiply(gross, rate / 100) if method == "exclusive" else Decimal(0)
        return LineMoney(price, pct, per_unit, gross, gross + tax, tax)
    if cfg.lines.inclusive_tax == "refuse":
        found.append(
            f"price {show(price)} includes {show(rate)}% tax, and lines.inclusive_tax is 'refuse'; set the line's tax "
            "method to exclusive in Pipedrive, or set lines.inclusive_tax to net_price"
        )
        return None
    return _net_of_inclusive(price, pct, per_unit, quantity, gross, rate, cfg, found)


def _net_of_inclusive(
    price: Decimal, pct: Decimal, per_unit: Decimal, quantity: Decimal, gross: Decimal, rate: Decimal,
    cfg: MappingConfig, found: list[str],
) -> LineMoney | None:  # fmt: skip
    """A net price with the fewest decimals (from 2) at which quantity x net price gives the exact net amount.

    The nearest net price at each precision first; failing at every precision, the one above, then the one
    below: when the exact net amount sits on a half cent (0.575), every price under the exact one rounds down.
    """
    divisor = 1 + rate / 100
    net = EXACT.divide(gross, divisor)
    wanted = round_amount(net, cfg)
    places = range(min(2, cfg.lines.price_decimals), cfg.lines.price_decimals + 1)
    for rounding in (decimal.ROUND_HALF_EVEN, decimal.ROUND_CEILING, decimal.ROUND_FLOOR):
        for unit in (Decimal(1).scaleb(-p) for p in places):
            net_price = EXACT.divide(price, divisor).quantize(unit, rounding=rounding, context=EXACT)
            net_disc = EXACT.divide(per_unit, divisor).quantize(unit, rounding=decimal.ROUND_HALF_EVEN, context=EXACT)
            amount = EXACT.subtract(EXACT.multiply(quantity * net_price, 1 - pct / 100), quantity * net_disc)
            if round_amount(amount, cfg) == wanted:
                return LineMoney(plain(net_price), pct, plain(net_disc), net, gross, gross - net)
    found.append(
        f"price {show(price)} includes {show(rate)}% tax, and no net price with at most {cfg.lines.price_decimals} "
        f"decimals gives the net line amount {show(wanted)} for quantity {show(quantity)}; set the line's tax method "
        "to exclusive in Pipedrive or raise lines.price_decimals"
    )
    return None


def line_sum_problem(item: DealProduct, money: LineMoney, cfg: MappingConfig) -> str | None:
    """Pipedrive's own `sum` of the line must be what we computed (else our reading of its math is wrong).

    Whether `sum` includes exclusive tax is UNCONFIRMED, so for exclusive lines either reading is accepted.
    """
    if item.sum is None:
        return None
    given = to_decimal(item.sum, "sum", [])
    if given is None:
        return None
    accepted = [money.pipedrive_total]
    if money.tax and item.tax_method == "exclusive":
        accepted.append(money.net_amount)
    if any(abs(given - value) <= unit(cfg) for value in accepted):
        return None
    hint = "; check lines.amount_discount (per_line or per_unit)" if item.discount_type == "amount" else ""
    return (
        f"Pipedrive's line total is {show(given)} but quantity x price less discount"
        f"{' plus tax' if money.tax else ''} is {show(round_amount(money.pipedrive_total, cfg))}{hint}"
    )


def deal_value_problem(deal: Deal, totals: Sequence[Decimal], cfg: MappingConfig) -> str | None:
    """The deal value must be the sum of its enabled lines' totals: a difference is a deal-level discount
    (or a value typed over the products), which a sales order would not carry."""
    if deal.value is None:
        return None
    value = to_decimal(deal.value, "value", [])
    if value is None:
        return None
    lines_total = sum(totals, Decimal(0))
    if abs(value - lines_total) <= unit(cfg) * max(1, len(totals)):
        return None
    if value < lines_total:
        return (
            f"deal {deal.id}: the deal value {show(value)} is {show(round_amount(lines_total - value, cfg))} less than "
            f"its lines' total {show(round_amount(lines_total, cfg))}: a deal-level discount, which the connector does "
            "not put on a sales order; give the discount to the product lines in Pipedrive instead"
        )
    return (
        f"deal {deal.id}: the deal value {show(value)} is more than its lines' total "
        f"{show(round_amount(lines_total, cfg))}; make the deal's products add up to its value in Pipedrive"
    )


def order_total_check(
    deal_value: Decimal | None, expected: Decimal, line_amounts: Sequence[Decimal], cfg: MappingConfig
) -> tuple[dict[str, Any], str | None]:
    """(what the job result records, the failure reason or None) once D365 has the order's lines.

    `expected` is the plan's net total; D365's `LineAmount`s must add up to it within rounding.
    """
    total = sum(line_amounts, Decimal(0))
    record: dict[str, Any] = {
        "deal_value": None if deal_value is None else show(deal_value),
        "order_total": show(total),
        "expected_order_total": show(expected),
    }
    if abs(total - expected) <= unit(cfg) * max(1, len(line_amounts)):
        return record, None
    return record, (
        f"D365's order total {show(total)} differs from the deal's net total {show(expected)}: D365 priced the lines "
        "differently (check the items' price units, trade agreements and currency rounding) and the order needs a "
        "correction in D365"
    )


def discount_parts(
    item: DealProduct, quantity: Decimal, price: Decimal, discount: Decimal, cfg: MappingConfig, found: list[str]
) -> tuple[Decimal, Decimal]:
    """(LineDiscountPercentage, LineDiscountAmount per unit) from Pipedrive's discount and its type.

    D365 keeps an amount discount PER UNIT (SalesLineDisc). A per-line amount is divided by the
    quantity and must come out exact at `lines.discount_decimals` places, else the order total would
    differ from the deal: that fails with a reason instead of rounding silently.
    """
    if discount < 0:
        found.append(f"discount {show(discount)} must not be negative")
        return Decimal(0), Decimal(0)
    if item.discount_type == "percentage":
        if discount > 100:
            found.append(f"discount {show(discount)}% is more than 100%")
        return discount, Decimal(0)
    if cfg.lines.amount_discount == "per_unit":
        if discount > price:
            found.append(f"discount {show(discount)} per unit is more than the price {show(price)}")
        return Decimal(0), discount
    if discount > quantity * price:
        found.append(f"discount {show(discount)} is more than the line total {show(quantity * price)}")
        return Decimal(0), Decimal(0)
    per_unit = EXACT.divide(discount, quantity)
    places = Decimal(1).scaleb(-cfg.lines.discount_decimals)
    rounded = per_unit.quantize(places, rounding=decimal.ROUND_HALF_EVEN, context=EXACT)
    if rounded * quantity != discount:
        found.append(
            f"amount discount {show(discount)} over quantity {show(quantity)} is not an exact per-unit discount "
            f"({per_unit:.{cfg.lines.discount_decimals + 2}f}...), and D365 stores line discounts per unit; use a percentage "
            "discount or an amount the quantity divides exactly"
        )
        return Decimal(0), Decimal(0)
    return Decimal(0), plain(rounded)


def to_decimal(value: object, what: str, found: list[str]) -> Decimal | None:
    """Exact Decimal of a JSON number; NaN/infinity/non-numbers are reported, never passed on."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, int | str | Decimal):
            number = Decimal(value)
        else:
            raise TypeError
    except (TypeError, decimal.InvalidOperation):
        found.append(f"{what} {value!r} is not a number")
        return None
    if not number.is_finite():
        found.append(f"{what} {value!r} is not a finite number")
        return None
    return plain(number)


def unit(cfg: MappingConfig) -> Decimal:
    """The smallest currency unit amounts are rounded to (0.01 with two decimals)."""
    return Decimal(1).scaleb(-cfg.lines.amount_decimals)


def round_amount(value: Decimal, cfg: MappingConfig) -> Decimal:
    return value.quantize(unit(cfg), rounding=decimal.ROUND_HALF_UP, context=EXACT)


def show(number: Decimal) -> str:
    """A number as a person would write it in a message: 5.0 -> 5, 2.50 -> 2.5."""
    return format(number.normalize(), "f")


def plain(number: Decimal) -> Decimal:
    """Write positive exponents out (Decimal("1E+1") -> 10); trailing zeros such as 2.50 are kept."""
    exponent = number.as_tuple().exponent
    return number.quantize(Decimal(1), context=EXACT) if isinstance(exponent, int) and exponent > 0 else number
