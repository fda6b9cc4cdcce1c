"""Seed data: a validated model (typos in a seed fail loudly) and the default demo/test seed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DimensionFormat(BaseModel):
    """The active "Default dimension format" (reference section 7): ordered names and the delimiter."""

    model_config = ConfigDict(extra="forbid")

    name: str = "DefaultDimensionFormat"
    segments: list[str] = Field(default_factory=lambda: ["BusinessUnit", "CostCenter", "Department"])
    delimiter: str = "-"
    values: dict[str, list[str]] = Field(default_factory=dict, description="Allowed values; absent = any.")


class SeedData(BaseModel):
    """Records use real entity field names; each list is loaded through the same rules as a POST."""

    model_config = ConfigDict(extra="forbid")

    default_company: str = "usmf"
    number_sequence_format: str = "{company}-{n:06d}"
    units: list[str] = Field(default_factory=lambda: ["pcs", "ea", "hr", "kg"])
    legal_entities: list[dict[str, Any]] = Field(default_factory=list)
    currencies: list[dict[str, Any]] = Field(default_factory=list)
    customer_groups: list[dict[str, Any]] = Field(default_factory=list)
    customers: list[dict[str, Any]] = Field(default_factory=list)
    released_products: list[dict[str, Any]] = Field(
        default_factory=list, description="ReleasedProductsV2 fields, plus ProductName/ProductDescription."
    )
    sales_orders: list[dict[str, Any]] = Field(
        default_factory=list, description="SalesOrderHeadersV2 fields plus 'lines' (SalesOrderLines fields)."
    )
    dimension_format: DimensionFormat = Field(default_factory=DimensionFormat)
    manual_sales_order_numbers: bool | None = Field(
        None,
        description="Whether the sales order number sequence takes numbers from the caller (Manual / 'allow user "
        "to set values'); None keeps the sandbox's setting (strict: no).",
    )


def default_seed() -> dict[str, Any]:
    """Two companies (usmf default, demf), a customer only in demf, an item with a leading space."""
    return {
        "default_company": "usmf",
        "legal_entities": [
            {"LegalEntityId": "usmf", "Name": "Contoso Entertainment System USA", "AddressCountryRegionId": "USA"},
            {"LegalEntityId": "demf", "Name": "Contoso Entertainment System Germany", "AddressCountryRegionId": "DEU"},
        ],
        "currencies": [
            {"CurrencyCode": "USD", "Name": "US Dollar", "Symbol": "$"},
            {"CurrencyCode": "EUR", "Name": "Euro", "Symbol": "€"},
            {"CurrencyCode": "GBP", "Name": "Pound Sterling", "Symbol": "£"},
        ],
        "customer_groups": [
            {"dataAreaId": "usmf", "CustomerGroupId": "10", "Description": "Wholesale customers"},
            {"dataAreaId": "usmf", "CustomerGroupId": "30", "Description": "Retail customers"},
            {"dataAreaId": "demf", "CustomerGroupId": "10", "Description": "Großhandel"},
        ],
        "customers": [
            {
                "dataAreaId": "usmf",
                "CustomerAccount": "US-001",
                "OrganizationName": "Contoso Retail San Diego",
                "CustomerGroupId": "30",
                "SalesCurrencyCode": "USD",
                "AddressCountryRegionId": "USA",
                "AddressCity": "San Diego",
            },
            {
                "dataAreaId": "usmf",
                "CustomerAccount": "US-002",
                "OrganizationName": "O'Brien & Sons",
                "CustomerGroupId": "10",
                "SalesCurrencyCode": "USD",
                "AddressCountryRegionId": "USA",
            },
            {
                "dataAreaId": "demf",
                "CustomerAccount": "DE-001",
                "OrganizationName": "Fabrikam Deutschland GmbH",
                "CustomerGroupId": "10",
                "SalesCurrencyCode": "EUR",
                "AddressCountryRegionId": "DEU",
            },
        ],
        "released_products": [
            {
                "dataAreaId": "usmf",
                "ItemNumber": "D0001",
                "ProductName": "MidRangeSpeaker2",
                "SearchName": "MIDSPEAKER",
                "SalesUnitSymbol": "ea",
                "InventoryUnitSymbol": "ea",
                "SalesPrice": 220.5,
                "ItemModelGroupId": "STD",
            },
            {
                "dataAreaId": "usmf",
                "ItemNumber": " RFI-TEST-001",
                "ProductName": "RFI consulting hours",
                "ProductType": "Service",
                "SalesUnitSymbol": "hr",
                "SalesPrice": 389.45,
                "ItemModelGroupId": "STD",
            },
            {
                "dataAreaId": "usmf",
                "ItemNumber": "P-100",
                "ProductName": "Widget 100",
                "SalesUnitSymbol": "pcs",
                "SalesPrice": 12,
                "DefaultLedgerDimensionDisplayValue": "001-022-",
            },
            {
                "dataAreaId": "demf",
                "ItemNumber": "D0001",
                "ProductName": "Lautsprecher",
                "SalesUnitSymbol": "ea",
                "SalesPrice": 199,
            },
        ],
        "dimension_format": {
            "segments": ["BusinessUnit", "CostCenter", "Department"],
            "delimiter": "-",
            "values": {
                "BusinessUnit": ["001", "002", "003"],
                "CostCenter": ["011", "022", "033"],
                "Department": ["022", "023", "024"],
            },
        },
    }
