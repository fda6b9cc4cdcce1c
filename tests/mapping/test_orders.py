"""build_order / order_reference / legal_entity_for: exact amounts, line order, actionable failures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.errors import PermanentError
from connector.mapping.errors import MappingError
from connector.mapping.orders import build_order, legal_entity_for, order_reference
from tests.mapping.factories import cfg, deal, line, product

D = Decimal


def one_line(config: Any = None, **line_fields: Any) -> dict[str, Any]:
    """The single planned line's OData payload for a deal with one product line."""
    plan = build_order(deal(), [(line(**line_fields), product())], "US-001", config or cfg())
    assert len(plan.lines) == 1
    return plan.lines[0].to_payload()


def problems(lines: list[Any], config: Any = None, **deal_fields: Any) -> list[str]:
    with pytest.raises(MappingError) as info:
        build_order(deal(**deal_fields), lines, "US-001", config or cfg())
    assert isinstance(info.value, PermanentError)
    assert info.value.deal_id == deal(**deal_fields).id
    return info.value.problems


# --- header ----------------------------------------------------------------------------------


def test_header_carries_customer_currency_reference_company_and_dimensions() -> None:
    plan = build_order(
        deal(currency="eur", pipeline_id=2),
        [(line(currency="EUR"), product())],
        "DE-001",
        cfg(),
        dimensions="002-011-022",
    )
    assert plan.legal_entity == "demf"
    assert plan.reference == "PD-123"
    assert plan.header.to_payload() == {
        "dataAreaId": "demf",
        "OrderingCustomerAccountNumber": "DE-001",
        "CurrencyCode": "EUR",
        "CustomersOrderReference": "PD-123",
        "DefaultShippingSiteId": "1",
        "DefaultShippingWarehouseId": "11",
        "DefaultLedgerDimensionDisplayValue": "002-011-022",
    }
    assert plan.lines[0].to_payload()["DefaultLedgerDimensionDisplayValue"] == "002-011-022"
    assert plan.lines[0].to_payload()["dataAreaId"] == "demf"


def test_reference_can_go_to_requisition_number_and_dimensions_can_stay_off_lines() -> None:
    config = cfg(
        order={"reference_field": "CustomerRequisitionNumber", "reference_template": "{pipeline_id}/{deal_id}"},
        dimensions={"on_lines": False},
    )
    plan = build_order(deal(), [(line(), product())], "US-001", config, dimensions="001--")
    header = plan.header.to_payload()
    assert header["CustomerRequisitionNumber"] == "1/123"
    assert "CustomersOrderReference" not in header
    assert "DefaultLedgerDimensionDisplayValue" not in plan.lines[0].to_payload()


def test_no_dimensions_leaves_field_unset_so_d365_defaults_apply() -> None:
    plan = build_order(deal(), [(line(), product())], "US-001", cfg())
    assert "DefaultLedgerDimensionDisplayValue" not in plan.header.to_payload()


def test_explicit_legal_entity_wins() -> None:
    plan = build_order(deal(pipeline_id=2), [(line(), product())], "US-001", cfg(), legal_entity="usmf")
    assert plan.header.data_area_id == "usmf"


@pytest.mark.parametrize(("pipeline_id", "expected"), [(1, "usmf"), (2, "demf"), (99, "usmf"), (None, "usmf")])
def test_legal_entity_per_pipeline(pipeline_id: int | None, expected: str) -> None:
    assert legal_entity_for(deal(pipeline_id=pipeline_id), cfg()) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("PD-{deal_id}", "PD-123"),
        ("{deal_id}", "123"),
        ("PD-{pipeline_id}-{deal_id}", "PD-1-123"),
        ("O{org_id}/D{deal_id}/U{owner_id}", "O5/D123/U7"),
        ("{{literal}}-{deal_id}", "{literal}-123"),
    ],
)
def test_order_reference_template(template: str, expected: str) -> None:
    assert order_reference(deal(), cfg(order={"reference_template": template})) == expected


def test_order_reference_missing_value_is_actionable() -> None:
    with pytest.raises(
        MappingError, match=r"deal 123: the order reference template 'PD-\{org_id\}-\{deal_id\}' needs org_id"
    ):
        order_reference(deal(org_id=None), cfg(order={"reference_template": "PD-{org_id}-{deal_id}"}))


@pytest.mark.parametrize(
    ("currency", "expected"), [(None, "None"), ("", "''"), ("US", "'US'"), ("EURO", "'EURO'"), ("€€€", "'€€€'")]
)
def test_deal_currency_must_be_three_letters(currency: str | None, expected: str) -> None:
    assert problems([(line(currency="USD"), product())], currency=currency) == [
        f"deal 123: currency {expected} is not a 3-letter currency code; set the deal's currency"
    ]


# --- lines: exact amounts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "qty", "price", "pct", "amount"),
    [
        ({"quantity": 3, "item_price": 19.99}, D("3"), D("19.99"), D(0), D(0)),
        ({"quantity": 0.1, "item_price": 0.2}, D("0.1"), D("0.2"), D(0), D(0)),  # no float drift
        ({"quantity": 2.5, "item_price": 1234567.891}, D("2.5"), D("1234567.891"), D(0), D(0)),
        ({"quantity": 1, "item_price": 0}, D(1), D(0), D(0), D(0)),  # free item
        ({"quantity": 4, "item_price": 10, "discount": 12.5}, D(4), D(10), D("12.5"), D(0)),  # default percentage
        ({"quantity": 4, "item_price": 10, "discount": 100, "discount_type": "percentage"}, D(4), D(10), D(100), D(0)),
        ({"quantity": 4, "item_price": 10, "discount": 10, "discount_type": "amount"}, D(4), D(10), D(0), D("2.5")),
        (
            {"quantity": 3, "item_price": 9.99, "discount": 0.03, "discount_type": "amount"},
            D(3),
            D("9.99"),
            D(0),
            D("0.01"),
        ),
        (
            {"quantity": 8, "item_price": 1, "discount": 0.001, "discount_type": "amount"},
            D(8),
            D(1),
            D(0),
            D("0.000125"),
        ),
        ({"quantity": 2, "item_price": 5, "discount": 10, "discount_type": "amount"}, D(2), D(5), D(0), D(5)),  # 100 %
        ({"quantity": 1e3, "item_price": 1e-2}, D("1000.0"), D("0.01"), D(0), D(0)),
    ],
)
def test_quantity_price_and_discount_map_exactly(
    fields: dict[str, Any], qty: Decimal, price: Decimal, pct: Decimal, amount: Decimal
) -> None:
    plan = build_order(deal(), [(line(**fields), product())], "US-001", cfg())
    planned = plan.lines[0]
    assert (planned.ordered_sales_quantity, planned.sales_price) == (qty, price)
    assert (planned.line_discount_percentage, planned.line_discount_amount) == (pct, amount)
    # Exactly what Pipedrive computes for the line total, in Decimal.
    gross = qty * price
    assert qty * (price - amount) * (1 - pct / 100) == gross * (1 - pct / 100) - amount * qty


def test_payload_numbers_are_json_numbers_without_drift() -> None:
    payload = one_line(quantity=0.1, item_price=0.2, discount=7.5)
    assert payload["OrderedSalesQuantity"] == 0.1
    assert payload["SalesPrice"] == 0.2
    assert payload["LineDiscountPercentage"] == 7.5
    assert payload["LineDiscountAmount"] == 0


def test_per_unit_amount_discount_setting() -> None:
    payload = one_line(
        cfg(lines={"amount_discount": "per_unit"}), quantity=3, item_price=10, discount=2.5, discount_type="amount"
    )
    assert payload["LineDiscountAmount"] == 2.5


def test_line_defaults_and_item_number_verbatim() -> None:
    config = cfg(lines={"unit": "ea", "site": "2", "warehouse": "21"})
    plan = build_order(deal(), [(line(), product(code=" RFI-TEST-001"))], "US-001", config)
    assert plan.lines[0].to_payload() == {
        "dataAreaId": "usmf",
        "ItemNumber": " RFI-TEST-001",  # D365 keys may carry a leading space: never trimmed
        "OrderedSalesQuantity": 1,
        "SalesUnitSymbol": "ea",
        "SalesPrice": 10,
        "SalesPriceQuantity": 1,
        "LineDiscountAmount": 0,
        "LineDiscountPercentage": 0,
        "ShippingSiteId": "2",
        "ShippingWarehouseId": "21",
        "CustomersLineNumber": 1,
    }


def test_line_order_is_kept_and_disabled_lines_skipped() -> None:
    pairs = [
        (line(3, id=30, order_nr=1), product(3, code="C")),
        (line(1, id=10, order_nr=2), product(1, code="A")),
        (line(4, id=40, is_enabled=False), product(4, code="D")),
        (line(2, id=20, order_nr=3), product(2, code="B")),
    ]
    plan = build_order(deal(), pairs, "US-001", cfg())
    assert [ln.item_number for ln in plan.lines] == ["C", "A", "B"]
    # Each line keeps its position among all the deal's products (a stable identity), disabled ones included.
    assert [ln.customers_line_number for ln in plan.lines] == [1, 2, 4]
    assert plan.deal_product_ids == [30, 10, 20]
    kept = build_order(deal(), pairs, "US-001", cfg(lines={"skip_disabled": False}))
    assert [ln.item_number for ln in kept.lines] == ["C", "A", "D", "B"]


# --- lines: actionable failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        (
            (line(name="Hydraulic pump"), product(name="Hydraulic pump", code=None)),
            "deal 123 line 1: product 'Hydraulic pump' has no code; set its code to a D365 item number",
        ),
        (
            (line(), product(name="Valve", code="   ")),
            "deal 123 line 1: product 'Valve' has no code; set its code to a D365 item number",
        ),
        (
            (line(7, name="Old thing"), None),
            "deal 123 line 1: product 'Old thing' (id 7) no longer exists in Pipedrive; replace the line",
        ),
        ((line(quantity=0), product()), "deal 123 line 1: quantity 0 must be more than 0"),
        ((line(quantity=-2), product()), "deal 123 line 1: quantity -2 must be more than 0"),
        ((line(item_price=-1.5), product()), "deal 123 line 1: price -1.5 must not be negative"),
        ((line(currency="EUR"), product()), "deal 123 line 1: is in EUR but the deal is in USD; use one currency"),
        ((line(discount=100.5), product()), "deal 123 line 1: discount 100.5% is more than 100%"),
        ((line(discount=-1), product()), "deal 123 line 1: discount -1 must not be negative"),
        (
            (line(quantity=2, item_price=5, discount=10.01, discount_type="amount"), product()),
            "deal 123 line 1: discount 10.01 is more than the line total 10",
        ),
        (
            (line(quantity=3, item_price=5, discount=10, discount_type="amount"), product()),
            "deal 123 line 1: amount discount 10 over quantity 3 is not an exact per-unit discount (3.33333333...), "
            "and D365 stores line discounts per unit; use a percentage discount or an amount the quantity divides exactly",
        ),
        ((line(quantity=float("nan")), product()), "deal 123 line 1: quantity nan is not a finite number"),
        ((line(item_price=float("inf")), product()), "deal 123 line 1: price inf is not a finite number"),
        (
            (line(product_variation_id=4, name="Shirt"), product(name="Shirt")),
            "deal 123 line 1: product 'Shirt' uses variation 4, which the connector cannot map to a D365 item; "
            "use a product whose code is the variant's item number",
        ),
    ],
)
def test_bad_line_fails_with_reason_naming_deal_and_line(pair: Any, expected: str) -> None:
    assert problems([pair]) == [expected]


def test_per_unit_discount_above_price() -> None:
    config = cfg(lines={"amount_discount": "per_unit"})
    assert problems([(line(item_price=5, discount=6, discount_type="amount"), product())], config) == [
        "deal 123 line 1: discount 6 per unit is more than the price 5"
    ]


def test_every_problem_of_every_line_is_reported_together() -> None:
    pairs = [
        (line(1), product(1, code="OK")),
        (line(2, name="Hydraulic pump"), product(2, name="Hydraulic pump", code="")),
        (line(3, quantity=0, currency="GBP"), product(3, code="X")),
    ]
    found = problems(pairs)
    assert found == [
        "deal 123 line 2: product 'Hydraulic pump' has no code; set its code to a D365 item number",
        "deal 123 line 3: is in GBP but the deal is in USD; use one currency",
        "deal 123 line 3: quantity 0 must be more than 0",
    ]
    with pytest.raises(MappingError) as info:
        build_order(deal(), pairs, "US-001", cfg())
    assert str(info.value) == "; ".join(found)


def test_line_numbers_count_disabled_lines_so_they_match_pipedrive() -> None:
    pairs = [(line(1, is_enabled=False), product(1)), (line(2), product(2, code=None))]
    assert problems(pairs) == ["deal 123 line 2: product 'Product 2' has no code; set its code to a D365 item number"]


@pytest.mark.parametrize("pairs", [[], [(line(is_enabled=False), product())]])
def test_deal_without_products_fails(pairs: list[Any]) -> None:
    assert problems(pairs) == ["deal 123: has no enabled products; add the products sold to the deal in Pipedrive"]


def test_blank_customer_account_fails() -> None:
    with pytest.raises(MappingError, match="deal 123: no D365 customer account to order for"):
        build_order(deal(), [(line(), product())], "  ", cfg())


# --- properties ----------------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=D("0.001"), max_value=10**6, places=3, allow_nan=False, allow_infinity=False)


@given(qty=quantities, price=money, pct=st.decimals(min_value=0, max_value=100, places=2))
def test_property_json_numbers_round_trip_exactly(qty: Decimal, price: Decimal, pct: Decimal) -> None:
    # Pipedrive sends JSON numbers, which our models read as floats: the Decimal we send is the JSON text.
    item = line(quantity=float(qty), item_price=float(price), discount=float(pct))
    planned = build_order(deal(), [(item, product())], "US-001", cfg()).lines[0]
    assert planned.ordered_sales_quantity == D(repr(float(qty)))
    assert planned.sales_price == D(repr(float(price)))
    assert planned.line_discount_percentage == D(repr(float(pct)))


@given(qty=st.integers(min_value=1, max_value=10_000), per_unit=st.decimals(min_value=0, max_value=1000, places=2))
def test_property_divisible_amount_discount_keeps_line_total(qty: int, per_unit: Decimal) -> None:
    price = D(1000)
    total_discount = per_unit * qty
    item = line(quantity=qty, item_price=float(price), discount=float(total_discount), discount_type="amount")
    if D(repr(float(total_discount))) != total_discount:
        return  # not representable as the JSON number Pipedrive would send
    planned = build_order(deal(), [(item, product())], "US-001", cfg()).lines[0]
    assert planned.line_discount_amount * qty == total_discount
    assert (price - planned.line_discount_amount) * qty == price * qty - total_discount


@pytest.mark.parametrize(
    ("decimals", "discount", "quantity", "expected"),
    [
        (6, 0.01, 4, D("0.0025")),
        (4, 0.01, 4, D("0.0025")),
        (3, 0.01, 4, None),  # 0.0025 needs 4 places
        (0, 30, 3, D(10)),
        (0, 31, 3, None),
    ],
)
def test_discount_decimals_bound_the_per_unit_amount(
    decimals: int, discount: float, quantity: int, expected: Decimal | None
) -> None:
    config = cfg(lines={"discount_decimals": decimals})
    item = line(quantity=quantity, item_price=100, discount=discount, discount_type="amount")
    if expected is None:
        with pytest.raises(MappingError, match="is not an exact per-unit discount"):
            build_order(deal(), [(item, product())], "US-001", config)
    else:
        assert build_order(deal(), [(item, product())], "US-001", config).lines[0].line_discount_amount == expected
