"""Typed D365 F&O records, named as the OData service names them.

Python attributes are snake_case; every field carries its real OData property name as alias
(checked against the recorded F&O metadata by `tests/d365/test_metadata_names.py`).
Read models ignore the hundreds of properties we do not use (real responses carry ~300 per
customer); create models forbid unknown fields so a typo fails here, not as a D365 Infolog.

Construct with either name (`CustomerCreate(data_area_id="dat", ...)` or `dataAreaId=`), send with
`to_payload()`, which emits only the fields that were set, under their OData names.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from connector.d365.base import (
    EMPTY_DATE,
    CompanyId,
    D365Create,
    D365Entity,
    D365Model,
    ODataDate,
    ODataDecimal,
    Text,
    is_empty_date,
)

# --- reference data ---------------------------------------------------------------------------


class LegalEntity(D365Entity):
    entity_set: ClassVar[str] = "LegalEntities"
    key_fields: ClassVar[tuple[str, ...]] = ("LegalEntityId",)

    legal_entity_id: CompanyId = Field(alias="LegalEntityId")
    name: Text = Field("", alias="Name")
    company_name: Text = Field("", alias="CompanyName")
    address_country_region_id: Text = Field("", alias="AddressCountryRegionId")
    address_country_region_iso_code: Text = Field("", alias="AddressCountryRegionISOCode")


class Currency(D365Entity):
    entity_set: ClassVar[str] = "Currencies"
    key_fields: ClassVar[tuple[str, ...]] = ("CurrencyCode",)

    currency_code: str = Field(alias="CurrencyCode", min_length=1)
    name: Text = Field("", alias="Name")
    symbol: Text = Field("", alias="Symbol")


class CustomerGroup(D365Entity):
    entity_set: ClassVar[str] = "CustomerGroups"
    key_fields: ClassVar[tuple[str, ...]] = ("dataAreaId", "CustomerGroupId")

    data_area_id: CompanyId = Field(alias="dataAreaId")
    customer_group_id: str = Field(alias="CustomerGroupId", min_length=1)
    description: Text = Field("", alias="Description")
    payment_term_id: Text = Field("", alias="PaymentTermId")
    default_dimension_display_value: Text = Field("", alias="DefaultDimensionDisplayValue")


# --- customers --------------------------------------------------------------------------------

PARTY_TYPES = ("Organization", "Person")


class _CustomerFields(D365Model):
    """Fields shared by the read and the create model of CustomersV3."""

    party_type: str = Field("Organization", alias="PartyType")
    organization_name: str | None = Field(None, alias="OrganizationName")
    person_first_name: str | None = Field(None, alias="PersonFirstName")
    person_last_name: str | None = Field(None, alias="PersonLastName")
    name_alias: str | None = Field(None, alias="NameAlias")
    customer_group_id: str | None = Field(None, alias="CustomerGroupId")
    sales_currency_code: str | None = Field(None, alias="SalesCurrencyCode")
    language_id: str | None = Field(None, alias="LanguageId")
    payment_terms: str | None = Field(None, alias="PaymentTerms")
    sales_tax_group: str | None = Field(None, alias="SalesTaxGroup")
    address_description: str | None = Field(None, alias="AddressDescription")
    address_street: str | None = Field(None, alias="AddressStreet")
    address_city: str | None = Field(None, alias="AddressCity")
    address_zip_code: str | None = Field(None, alias="AddressZipCode")
    address_state: str | None = Field(None, alias="AddressState")
    address_county: str | None = Field(None, alias="AddressCounty")
    address_country_region_id: str | None = Field(None, alias="AddressCountryRegionId")
    address_country_region_iso_code: str | None = Field(None, alias="AddressCountryRegionISOCode")
    primary_contact_email: str | None = Field(None, alias="PrimaryContactEmail")
    primary_contact_phone: str | None = Field(None, alias="PrimaryContactPhone")
    primary_contact_url: str | None = Field(None, alias="PrimaryContactURL")
    default_dimension_display_value: str | None = Field(None, alias="DefaultDimensionDisplayValue")


class Customer(_CustomerFields, D365Entity):
    entity_set: ClassVar[str] = "CustomersV3"
    key_fields: ClassVar[tuple[str, ...]] = ("dataAreaId", "CustomerAccount")

    data_area_id: CompanyId = Field(alias="dataAreaId")
    customer_account: str = Field(alias="CustomerAccount", min_length=1)
    party_number: str | None = Field(None, alias="PartyNumber")
    invoice_account: str | None = Field(None, alias="InvoiceAccount")
    on_hold_status: str | None = Field(None, alias="OnHoldStatus")
    full_primary_address: str | None = Field(None, alias="FullPrimaryAddress")

    @property
    def display_name(self) -> str:
        if self.party_type == "Person":
            return " ".join(p for p in (self.person_first_name, self.person_last_name) if p)
        return self.organization_name or ""


class CustomerCreate(_CustomerFields, D365Create):
    """POST CustomersV3. Leave `customer_account` unset to take the number sequence (real F&O behaviour)."""

    entity_set: ClassVar[str] = "CustomersV3"

    data_area_id: CompanyId = Field(alias="dataAreaId")
    customer_account: str | None = Field(None, alias="CustomerAccount", min_length=1)
    customer_group_id: str = Field(alias="CustomerGroupId", min_length=1)
    sales_currency_code: str = Field(alias="SalesCurrencyCode", min_length=3, max_length=3)

    @model_validator(mode="after")
    def party_has_its_name(self) -> CustomerCreate:
        if self.party_type not in PARTY_TYPES:
            raise ValueError(f"PartyType must be one of {', '.join(PARTY_TYPES)}")
        # [ENT-CUST]: ORGANIZATIONNAME required for organizations, a person-name field for persons.
        if self.party_type == "Organization" and not (self.organization_name or "").strip():
            raise ValueError("OrganizationName is required when PartyType is Organization")
        if self.party_type == "Person" and not ((self.person_first_name or "") + (self.person_last_name or "")).strip():
            raise ValueError("PersonFirstName or PersonLastName is required when PartyType is Person")
        if self.address_description and not self.address_country_region_id:
            raise ValueError("AddressCountryRegionId is required when AddressDescription is given")
        return self


# --- products ---------------------------------------------------------------------------------


class ReleasedProduct(D365Entity):
    """ReleasedProductsV2 has no ProductName (see `ReleasedProductName`). ItemNumber keeps its spaces."""

    entity_set: ClassVar[str] = "ReleasedProductsV2"
    key_fields: ClassVar[tuple[str, ...]] = ("dataAreaId", "ItemNumber")

    data_area_id: CompanyId = Field(alias="dataAreaId")
    item_number: str = Field(alias="ItemNumber", min_length=1)
    product_number: Text = Field("", alias="ProductNumber")
    product_type: Text = Field("", alias="ProductType")
    product_sub_type: Text = Field("", alias="ProductSubType")
    search_name: Text = Field("", alias="SearchName")
    product_search_name: Text = Field("", alias="ProductSearchName")
    product_group_id: Text = Field("", alias="ProductGroupId")
    item_model_group_id: Text = Field("", alias="ItemModelGroupId")
    inventory_unit_symbol: Text = Field("", alias="InventoryUnitSymbol")
    sales_unit_symbol: Text = Field("", alias="SalesUnitSymbol")
    sales_price: ODataDecimal = Field(Decimal(0), alias="SalesPrice")
    sales_price_quantity: ODataDecimal = Field(Decimal(0), alias="SalesPriceQuantity")
    sales_sales_tax_item_group_code: Text = Field("", alias="SalesSalesTaxItemGroupCode")
    default_ledger_dimension_display_value: Text = Field("", alias="DefaultLedgerDimensionDisplayValue")


class ReleasedProductName(D365Entity):
    """Product names come from ReleasedProductCreationsV2 (ProductName exists there, not on V2)."""

    entity_set: ClassVar[str] = "ReleasedProductCreationsV2"
    key_fields: ClassVar[tuple[str, ...]] = ("dataAreaId", "ItemNumber")

    data_area_id: CompanyId = Field(alias="dataAreaId")
    item_number: str = Field(alias="ItemNumber", min_length=1)
    product_name: Text = Field("", alias="ProductName")
    product_description: Text = Field("", alias="ProductDescription")


# --- sales orders -----------------------------------------------------------------------------


class SalesOrderLine(D365Entity):
    """SalesOrderLines (SalesOrderLineV2Entity). Key is InventoryLotId, not LineNumber."""

    entity_set: ClassVar[str] = "SalesOrderLines"
    key_fields: ClassVar[tuple[str, ...]] = ("dataAreaId", "InventoryLotId")

    data_area_id: CompanyId = Field(alias="dataAreaId")
    inventory_lot_id: str = Field(alias="InventoryLotId", min_length=1)
    sales_order_number: str = Field(alias="SalesOrderNumber")
    line_number: ODataDecimal = Field(Decimal(0), alias="LineNumber")
    line_creation_sequence_number: int = Field(0, alias="LineCreationSequenceNumber")
    item_number: Text = Field("", alias="ItemNumber")
    ordered_sales_quantity: ODataDecimal = Field(Decimal(0), alias="OrderedSalesQuantity")
    sales_unit_symbol: Text = Field("", alias="SalesUnitSymbol")
    sales_price: ODataDecimal = Field(Decimal(0), alias="SalesPrice")
    line_discount_amount: ODataDecimal = Field(Decimal(0), alias="LineDiscountAmount")
    line_discount_percentage: ODataDecimal = Field(Decimal(0), alias="LineDiscountPercentage")
    line_amount: ODataDecimal = Field(Decimal(0), alias="LineAmount")
    currency_code: Text = Field("", alias="CurrencyCode")
    shipping_site_id: Text = Field("", alias="ShippingSiteId")
    shipping_warehouse_id: Text = Field("", alias="ShippingWarehouseId")
    line_description: Text = Field("", alias="LineDescription")
    customers_line_number: int = Field(0, alias="CustomersLineNumber")
    default_ledger_dimension_display_value: Text = Field("", alias="DefaultLedgerDimensionDisplayValue")
    requested_shipping_date: datetime | None = Field(None, alias="RequestedShippingDate")
    sales_order_line_status: Text = Field("", alias="SalesOrderLineStatus")


class SalesOrderHeader(D365Entity):
    """SalesOrderHeadersV2; `lines` is filled when read with `$expand=SalesOrderLines`."""

    entity_set: ClassVar[str] = "SalesOrderHeadersV2"
    key_fields: ClassVar[tuple[str, ...]] = ("dataAreaId", "SalesOrderNumber")

    data_area_id: CompanyId = Field(alias="dataAreaId")
    sales_order_number: str = Field(alias="SalesOrderNumber", min_length=1)
    ordering_customer_account_number: Text = Field("", alias="OrderingCustomerAccountNumber")
    invoice_customer_account_number: Text = Field("", alias="InvoiceCustomerAccountNumber")
    currency_code: Text = Field("", alias="CurrencyCode")
    customers_order_reference: Text = Field("", alias="CustomersOrderReference")
    customer_requisition_number: Text = Field("", alias="CustomerRequisitionNumber")
    sales_order_name: Text = Field("", alias="SalesOrderName")
    sales_order_status: Text = Field("", alias="SalesOrderStatus")
    sales_order_processing_status: Text = Field("", alias="SalesOrderProcessingStatus")
    requested_shipping_date: datetime | None = Field(None, alias="RequestedShippingDate")
    requested_receipt_date: datetime | None = Field(None, alias="RequestedReceiptDate")
    order_creation_date_time: datetime | None = Field(None, alias="OrderCreationDateTime")
    order_total_amount: ODataDecimal = Field(Decimal(0), alias="OrderTotalAmount")
    default_ledger_dimension_display_value: Text = Field("", alias="DefaultLedgerDimensionDisplayValue")
    lines: list[SalesOrderLine] = Field(default_factory=list, alias="SalesOrderLines")


class SalesOrderHeaderCreate(D365Create):
    """POST SalesOrderHeadersV2.

    Leave `sales_order_number` unset to take the number sequence; set it only where the number
    sequence allows manual numbers (docs/api-facts.md, D365 §2).
    """

    entity_set: ClassVar[str] = "SalesOrderHeadersV2"

    data_area_id: CompanyId = Field(alias="dataAreaId")
    sales_order_number: str | None = Field(None, alias="SalesOrderNumber", min_length=1)
    ordering_customer_account_number: str = Field(alias="OrderingCustomerAccountNumber", min_length=1)
    invoice_customer_account_number: str | None = Field(None, alias="InvoiceCustomerAccountNumber", min_length=1)
    currency_code: str = Field(alias="CurrencyCode", min_length=3, max_length=3)
    customers_order_reference: str | None = Field(None, alias="CustomersOrderReference")
    customer_requisition_number: str | None = Field(None, alias="CustomerRequisitionNumber")
    sales_order_name: str | None = Field(None, alias="SalesOrderName")
    language_id: str | None = Field(None, alias="LanguageId")
    requested_shipping_date: ODataDate | None = Field(None, alias="RequestedShippingDate")
    requested_receipt_date: ODataDate | None = Field(None, alias="RequestedReceiptDate")
    default_shipping_site_id: str | None = Field(None, alias="DefaultShippingSiteId")
    default_shipping_warehouse_id: str | None = Field(None, alias="DefaultShippingWarehouseId")
    delivery_mode_code: str | None = Field(None, alias="DeliveryModeCode")
    delivery_terms_code: str | None = Field(None, alias="DeliveryTermsCode")
    payment_terms_name: str | None = Field(None, alias="PaymentTermsName")
    email: str | None = Field(None, alias="Email")
    default_ledger_dimension_display_value: str | None = Field(None, alias="DefaultLedgerDimensionDisplayValue")

    @field_validator("currency_code")
    @classmethod
    def currency_upper_case(cls, value: str) -> str:
        return value.upper()


class SalesOrderLineCreate(D365Create):
    """POST SalesOrderLines. `sales_order_number` is filled by the client when created with the header."""

    entity_set: ClassVar[str] = "SalesOrderLines"

    data_area_id: CompanyId = Field(alias="dataAreaId")
    sales_order_number: str | None = Field(None, alias="SalesOrderNumber", min_length=1)
    item_number: str = Field(alias="ItemNumber", min_length=1)
    ordered_sales_quantity: ODataDecimal = Field(alias="OrderedSalesQuantity", allow_inf_nan=False)
    sales_unit_symbol: str | None = Field(None, alias="SalesUnitSymbol")
    sales_price: ODataDecimal | None = Field(None, alias="SalesPrice", ge=0, allow_inf_nan=False)
    sales_price_quantity: ODataDecimal | None = Field(None, alias="SalesPriceQuantity", gt=0, allow_inf_nan=False)
    line_discount_amount: ODataDecimal | None = Field(None, alias="LineDiscountAmount", ge=0, allow_inf_nan=False)
    line_discount_percentage: ODataDecimal | None = Field(
        None, alias="LineDiscountPercentage", ge=0, le=100, allow_inf_nan=False
    )
    shipping_site_id: str | None = Field(None, alias="ShippingSiteId")
    shipping_warehouse_id: str | None = Field(None, alias="ShippingWarehouseId")
    line_description: str | None = Field(None, alias="LineDescription")
    customers_line_number: int | None = Field(None, alias="CustomersLineNumber", ge=0)
    requested_shipping_date: ODataDate | None = Field(None, alias="RequestedShippingDate")
    default_ledger_dimension_display_value: str | None = Field(None, alias="DefaultLedgerDimensionDisplayValue")


#: Every entity model the client reads or writes; the metadata test walks this list.
ENTITY_MODELS: tuple[type[D365Entity] | type[D365Create], ...] = (
    LegalEntity,
    Currency,
    CustomerGroup,
    Customer,
    CustomerCreate,
    ReleasedProduct,
    ReleasedProductName,
    SalesOrderLine,
    SalesOrderHeader,
    SalesOrderHeaderCreate,
    SalesOrderLineCreate,
)

#: Names the client uses outside the models (filters, keys, $orderby, $expand), per entity set.
CLIENT_PROPERTIES: dict[str, frozenset[str]] = {
    "CustomersV3": frozenset({"dataAreaId", "CustomerAccount", "OrganizationName", "AddressCountryRegionId"}),
    "ReleasedProductsV2": frozenset({"dataAreaId", "ItemNumber"}),
    "SalesOrderHeadersV2": frozenset({"dataAreaId", "SalesOrderNumber", "CustomersOrderReference", "SalesOrderLines"}),
    "SalesOrderLines": frozenset({"dataAreaId", "SalesOrderNumber", "InventoryLotId"}),
}


def names_used() -> dict[str, set[str]]:
    """Every entity set and property/navigation name the client sends or reads (for the metadata test)."""
    used: dict[str, set[str]] = {name: set(props) for name, props in CLIENT_PROPERTIES.items()}
    for model in ENTITY_MODELS:
        names = used.setdefault(model.entity_set, set())
        names.update(f.alias or n for n, f in model.model_fields.items() if not (f.alias or "").startswith("@"))
    return used


__all__ = [
    "CLIENT_PROPERTIES",
    "EMPTY_DATE",
    "ENTITY_MODELS",
    "Currency",
    "Customer",
    "CustomerCreate",
    "CustomerGroup",
    "D365Create",
    "D365Entity",
    "D365Model",
    "LegalEntity",
    "ReleasedProduct",
    "ReleasedProductName",
    "SalesOrderHeader",
    "SalesOrderHeaderCreate",
    "SalesOrderLine",
    "SalesOrderLineCreate",
    "is_empty_date",
    "names_used",
]
