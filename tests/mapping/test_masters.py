"""D365 -> Pipedrive payloads and the content hash that keeps master resyncs write-free."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from connector.d365.models import Customer, ReleasedProduct
from connector.mapping.masters import content_hash, organization_from_customer, product_from_released
from connector.pipedrive.models import ProductInput
from tests.mapping.factories import cfg


def released(**fields: object) -> ReleasedProduct:
    base = {"dataAreaId": "usmf", "ItemNumber": " RFI-TEST-001", "SalesUnitSymbol": "hr", "SalesPrice": 389.45}
    return ReleasedProduct.model_validate({**base, **fields})


def test_product_keeps_item_number_as_code_and_prices_per_unit() -> None:
    payload = product_from_released(released(), name="RFI consulting hours", currency="usd").body()
    assert payload == {
        "name": "RFI consulting hours",
        "code": " RFI-TEST-001",
        "unit": "hr",
        "prices": [{"price": 389.45, "currency": "USD"}],
    }
    per_ten = product_from_released(released(SalesPrice=25, SalesPriceQuantity=10), currency="USD").body()
    assert per_ten["prices"] == [{"price": 2.5, "currency": "USD"}]


def test_product_name_fallbacks_and_no_price_without_currency() -> None:
    assert product_from_released(released(ProductSearchName="RFI hours")).body()["name"] == "RFI hours"
    assert product_from_released(released(SearchName="RFIHOURS")).body()["name"] == "RFIHOURS"
    bare = product_from_released(released(SalesUnitSymbol="", SalesPrice=0), currency="USD").body()
    assert bare == {"name": "RFI-TEST-001", "code": " RFI-TEST-001"}
    assert "prices" not in product_from_released(released()).body()


def test_organization_carries_account_on_configured_field_and_address() -> None:
    customer = Customer.model_validate(
        {
            "dataAreaId": "demf",
            "CustomerAccount": "DE-001",
            "OrganizationName": "Fabrikam Deutschland GmbH",
            "AddressStreet": "Hauptstr. 5",
            "AddressCity": "Berlin",
            "AddressZipCode": "10115",
            "AddressCountryRegionId": "DEU",
            "FullPrimaryAddress": "Hauptstr. 5\n10115 Berlin\nDEU",
        }
    )
    assert organization_from_customer(customer, cfg()).body() == {
        "name": "Fabrikam Deutschland GmbH",
        "custom_fields": {"D365 account": "DE-001"},
        "address": {
            "value": "Hauptstr. 5, 10115 Berlin, DEU",
            "country": "Germany",
            "locality": "Berlin",
            "postal_code": "10115",
            "admin_area_level_1": None,
        },
    }


def test_organization_without_address_or_account_field() -> None:
    customer = Customer.model_validate({"dataAreaId": "usmf", "CustomerAccount": "US-009", "OrganizationName": ""})
    config = cfg(customer={"match_rules": ["name"]}, pipedrive_fields={"org_customer_account": None})
    assert organization_from_customer(customer, config).body() == {"name": "US-009"}
    composed = Customer.model_validate(
        {"dataAreaId": "usmf", "CustomerAccount": "US-1", "OrganizationName": "X", "AddressCity": "Austin",
         "AddressCountryRegionId": "FRA"}
    )  # fmt: skip
    address = organization_from_customer(composed, cfg()).body()["address"]
    assert (address["value"], address["country"]) == ("Austin", "FRA")


def test_content_hash_is_stable_and_sensitive() -> None:
    a = ProductInput(name="P", code="C", prices=[{"price": 1.0, "currency": "USD"}])  # type: ignore[list-item]
    b = ProductInput(code="C", name="P", prices=[{"currency": "USD", "price": 1}])  # type: ignore[list-item]
    assert content_hash(a) == content_hash(b)
    assert content_hash({"x": 1, "y": None}) == content_hash({"x": Decimal("1.00")})
    assert content_hash(a) != content_hash(
        ProductInput(name="P", code="C", prices=[{"price": 1.01, "currency": "USD"}])
    )  # type: ignore[list-item]
    assert len(content_hash(a)) == 64


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=5))
def test_content_hash_ignores_key_order(data: dict[str, object]) -> None:
    reordered = dict(reversed(list(data.items())))
    assert content_hash(data) == content_hash(reordered)
