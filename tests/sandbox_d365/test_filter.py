"""$filter parser/evaluator (pure) and its errors."""

from __future__ import annotations

import pytest

from connector.dev.sandbox.d365.metadata import load_schema
from connector.dev.sandbox.d365.odata_filter import ODataQueryError, evaluate, parse_filter

SCHEMA = load_schema()
CUSTOMERS = SCHEMA.entity_sets["CustomersV3"]
LINES = SCHEMA.entity_sets["SalesOrderLines"]
ROW = {
    "CustomerAccount": "US-002",
    "OrganizationName": "O'Brien & Sons",
    "CreditLimit": 5000,
    "OnHoldStatus": "No",
    "IsFuelSurchargeApplied": "Yes",
    "AddressCity": "San Diego",
}


def matches(text: str, row: dict[str, object] = ROW) -> bool:
    return evaluate(parse_filter(text, CUSTOMERS, dict(SCHEMA.enums)), row)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CustomerAccount eq 'US-002'", True),
        ("CustomerAccount eq 'us-002'", True),  # case-insensitive collation
        ("CustomerAccount ne 'US-002'", False),
        ("OrganizationName eq 'O''Brien & Sons'", True),
        ("OrganizationName eq '*brien*'", True),
        ("OrganizationName eq 'Brien*'", False),
        ("OrganizationName ne '*Sons'", False),
        ("CreditLimit gt 4999.5 and CreditLimit le 5000", True),
        ("CreditLimit lt 5000 or AddressCity eq 'San Diego'", True),
        ("not (CreditLimit ge 5000)", False),
        ("(CustomerAccount eq 'X' or CustomerAccount eq 'US-002') and not AddressCity eq 'Paris'", True),
        ("IsFuelSurchargeApplied eq Microsoft.Dynamics.DataEntities.NoYes'Yes'", True),
        ("OnHoldStatus ne Microsoft.Dynamics.DataEntities.CustVendorBlocked'All'", True),
        ("AddressCity eq null", False),
    ],
)
def test_filter_semantics(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Name eq 'x'", "Could not find a property named 'Name'"),
        ("IsFuelSurchargeApplied eq 'Yes'", "incompatible types"),
        ("IsFuelSurchargeApplied gt Microsoft.Dynamics.DataEntities.NoYes'No'", "Only eq and ne"),
        ("IsFuelSurchargeApplied eq Microsoft.Dynamics.DataEntities.NoYes'Maybe'", "not a valid enumerated"),
        ("CustomerAccount in ('a','b')", "not supported"),
        ("CustomerAccount eq 'open", "Syntax error"),
        ("(CustomerAccount eq 'a'", r"'\)' expected"),
        ("contains(CustomerAccount,'a')", "Unknown function"),
        ("CustomerAccount eq", "Expression expected"),
    ],
)
def test_filter_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ODataQueryError, match=message):
        parse_filter(text, CUSTOMERS, dict(SCHEMA.enums))


def test_dates_and_decimals_compare_by_value() -> None:
    node = parse_filter("RequestedShippingDate ge 2026-07-01T00:00:00Z and LineNumber eq 2", LINES, dict(SCHEMA.enums))
    assert evaluate(node, {"RequestedShippingDate": "2026-07-14T12:00:00Z", "LineNumber": 2})
    assert not evaluate(node, {"RequestedShippingDate": "2026-06-30T12:00:00Z", "LineNumber": 2})
