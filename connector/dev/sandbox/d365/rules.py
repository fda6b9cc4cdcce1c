"""Entity rules F&O runs on write (defaults, number sequences, foreign keys, natural-key duplicates).

Texts follow the real Infolog messages in the reference (samples/odata-error-body-samples.json); where
the reference has no captured wording for an entity, the same template is used (marked UNCONFIRMED).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from connector.dev.sandbox.d365.entities import EMPTY_DATE, format_date, key_values
from connector.dev.sandbox.d365.odata_errors import WriteError, bad_request
from connector.dev.sandbox.d365.store import Store

# Table label, table name and key labels for the duplicate message (CustGroup is captured; the rest
# follow the same template: UNCONFIRMED wording).
TABLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "CustomersV3": ("Customers", "CustTable", ("CustomerAccount",)),
    "CustomerGroups": ("Customer groups", "CustGroup", ("CustomerGroupId", "Description")),
    "Currencies": ("Currency", "Currency", ("CurrencyCode",)),
    "LegalEntities": ("Legal entities", "CompanyInfo", ("LegalEntityId",)),
    "ReleasedProductsV2": ("Items", "InventTable", ("ItemNumber",)),
    "ReleasedProductCreationsV2": ("Items", "InventTable", ("ItemNumber",)),
    "SalesOrderHeadersV2": ("Sales orders", "SalesTable", ("SalesOrderNumber",)),
    "SalesOrderLines": ("Order lines", "SalesLine", ("InventoryLotId",)),
}
KEY_LABELS = {
    "CustomerAccount": "Customer account",
    "CustomerGroupId": "Customer group",
    "CurrencyCode": "Currency",
    "LegalEntityId": "Company",
    "ItemNumber": "Item number",
    "SalesOrderNumber": "Sales order",
    "InventoryLotId": "Lot ID",
}
PRODUCT_TEXT_FIELDS = ("ProductName", "ProductDescription")
PERSON_NAME_FIELDS = ("PersonFirstName", "PersonMiddleName", "PersonLastName")


@dataclass
class WriteOptions:
    """Behaviour switches where the reference is UNCONFIRMED (see docs/sandbox-d365.md)."""

    write_error_status: int = 400  # 400 in recent reports, 500 in older ones (reference section 5)
    # The sales order number sequence takes caller-made numbers only when the admin allows it (Microsoft's
    # changeset sample: "Change number sequence setting ... to allow user to set values"); strict default.
    manual_sales_order_numbers: bool = False
    # Customer-account number sequence: "manual" needs CustomerAccount, "automatic" refuses one, "any" takes
    # either (whether a non-manual F&O sequence accepts a given account is UNCONFIRMED).
    customer_accounts: Literal["any", "automatic", "manual"] = "any"
    # Address reference data (LogisticsAddressState / County ids per country): anything else is refused.
    address_states: dict[str, list[str]] = field(
        default_factory=lambda: {
            "USA": ["CA", "NY", "TX", "WA"],
            "DEU": ["BE", "BY", "HH", "NW"],
            "EST": ["HARJU", "TARTU"],
        }
    )
    address_counties: dict[str, list[str]] = field(default_factory=lambda: {"USA": ["KINGS", "SAN DIEGO"]})
    dimension_format: list[str] = field(default_factory=lambda: ["BusinessUnit", "CostCenter", "Department"])
    dimension_delimiter: str = "-"
    dimension_values: dict[str, list[str]] = field(default_factory=dict)


class Rules:
    def __init__(self, store: Store, options: WriteOptions) -> None:
        self.store = store
        self.options = options

    def _fail(self, entity_set: str, lines: list[str], *, prefix: str | None = None) -> WriteError:
        aot = self.store.entity(entity_set).aot_name
        return WriteError(aot, lines, status=self.options.write_error_status, prefix=prefix)

    # ---- create -------------------------------------------------------------------------------
    def create(self, entity_set: str, values: dict[str, Any]) -> dict[str, Any]:
        entity = self.store.entity(entity_set)
        if entity.company_specific:
            company = str(values.get("dataAreaId") or self.store.default_company).casefold()
            if company not in self.store.companies():
                raise self._fail(entity_set, [f"Error: Company '{company}' does not exist."])
            values["dataAreaId"] = company
        if entity_set == "ReleasedProductCreationsV2":
            return self._create_product_creation(values)
        prepare = getattr(self, f"_prepare_{entity_set}", None)
        if prepare is not None:
            prepare(values)
        self._check_duplicate(entity_set, values)
        record = self.store.insert(entity_set, values)
        return record

    def _check_duplicate(self, entity_set: str, values: dict[str, Any], *, report_as: str | None = None) -> None:
        """Natural-key duplicate check on `entity_set`'s table; errors name `report_as` (the entity written)."""
        entity = self.store.entity(entity_set)
        for k in entity.key:
            if not values.get(k):
                label = KEY_LABELS.get(k, k)
                raise self._fail(report_as or entity_set, [f"Warning: Field '{label}' must be filled in."])
        if key_values(entity, values) in self.store.tables[entity_set]:
            label, table, fields = TABLES[entity_set]
            existing = self.store.tables[entity_set][key_values(entity, values)]
            shown = ", ".join(str(values.get(f) or existing.get(f, "")) for f in fields)
            first = KEY_LABELS.get(fields[0], fields[0])
            raise self._fail(
                report_as or entity_set,
                [f"Info: Cannot create a record in {label} ({table}). {first}: {shown}.\nThe record already exists.."],
            )

    def _related(
        self, entity_set: str, lines: list[str], values: dict[str, Any], fld: str, label: str,
        target: str, target_label: str, key: dict[str, str],
    ) -> dict[str, Any] | None:  # fmt: skip
        value = values.get(fld)
        if not value:
            return None
        found = self.store.find(target, key)
        if found is None:
            aot = self.store.entity(entity_set).aot_name
            lines.append(
                f"Warning: The value '{value}' in field '{label}' is not found in the related table '{target_label}'."
            )
            lines.append(f"Warning: validateField failed on field '{aot}.{fld}'.")
        return found

    def _required(self, values: dict[str, Any], lines: list[str], fld: str, label: str) -> None:
        if not values.get(fld):
            lines.append(f"Warning: Field '{label}' must be filled in.")

    def _prepare_CustomersV3(self, values: dict[str, Any]) -> None:
        company = values["dataAreaId"]
        given = bool(values.get("CustomerAccount"))
        if self.options.customer_accounts == "manual" and not given:
            raise self._fail("CustomersV3", ["Warning: Field 'Customer account' must be filled in."])
        if self.options.customer_accounts == "automatic" and given:
            raise self._fail("CustomersV3", ["Error: The number sequence does not allow manual numbers."])
        if not given:
            values["CustomerAccount"] = self.store.next_number("CustomerAccount", company)
        values.setdefault("PartyType", "Organization")
        self._validate_customer(values)
        if not values.get("NameAlias"):
            values["NameAlias"] = str(values.get("OrganizationName") or values.get("PersonLastName") or "")[:20]
        values.setdefault("PartyNumber", self.store.next_number("PartyNumber", "party"))
        values.setdefault("InvoiceAccount", "")

    def _validate_customer(self, values: dict[str, Any]) -> None:
        company = values["dataAreaId"]
        party = values.get("PartyType", "Organization")
        if party not in ("Organization", "Person"):
            raise self._fail("CustomersV3", [f"Error: '{party}' is not a valid party type for a customer."])
        if party == "Organization" and not values.get("OrganizationName"):
            raise self._fail(
                "CustomersV3", ["Error: Mandatory field 'Organization name' not set."], prefix="Write returned RecId 0."
            )
        if party == "Person" and not any(values.get(f) for f in PERSON_NAME_FIELDS):
            # Reference section 2: a person needs one of the person-name fields (exact wording UNCONFIRMED).
            raise self._fail(
                "CustomersV3", ["Error: Mandatory field 'Name' not set."], prefix="Write returned RecId 0."
            )
        lines: list[str] = []
        if values.get("AddressDescription") and not values.get("AddressCountryRegionId"):
            lines.append("Warning: Field 'Country/region' must be filled in.")  # [ENT-CUST]; wording UNCONFIRMED
        self._required(values, lines, "CustomerGroupId", "Customer group")
        self._required(values, lines, "SalesCurrencyCode", "Currency")
        gid = str(values.get("CustomerGroupId", ""))
        self._related("CustomersV3", lines, values, "CustomerGroupId", "Customer group", "CustomerGroups",
                      "Customer groups", {"dataAreaId": company, "CustomerGroupId": gid})  # fmt: skip
        ccy = str(values.get("SalesCurrencyCode", ""))
        self._related("CustomersV3", lines, values, "SalesCurrencyCode", "Currency", "Currencies", "Currency",
                      {"CurrencyCode": ccy})  # fmt: skip
        self._check_dimensions("CustomersV3", lines, values, "DefaultDimensionDisplayValue")
        country = str(values.get("AddressCountryRegionId") or "").upper()
        for fld, label, table, known in (("AddressState", "State", "Address state", self.options.address_states),
                                          ("AddressCounty", "County", "Address county", self.options.address_counties)):  # fmt: skip
            value = values.get(fld)
            if value and str(value).casefold() not in {v.casefold() for v in known.get(country, [])}:
                lines.append(
                    f"Warning: The value '{value}' in field '{label}' is not found in the related table '{table}'."
                )
                lines.append(f"Warning: validateField failed on field 'CustCustomerV3Entity.{fld}'.")
        if lines:
            raise self._fail("CustomersV3", lines)

    def _prepare_CustomerGroups(self, values: dict[str, Any]) -> None:
        lines: list[str] = []
        self._check_dimensions("CustomerGroups", lines, values, "DefaultDimensionDisplayValue")
        if lines:
            raise self._fail("CustomerGroups", lines)

    def _prepare_ReleasedProductsV2(self, values: dict[str, Any]) -> None:
        values.setdefault("ProductNumber", values.get("ItemNumber", ""))
        self._validate_product("ReleasedProductsV2", values)

    def _validate_product(self, entity_set: str, values: dict[str, Any]) -> None:
        lines: list[str] = []
        for fld in ("SalesUnitSymbol", "InventoryUnitSymbol", "PurchaseUnitSymbol", "BOMUnitSymbol"):
            unit = values.get(fld)
            if unit and str(unit).casefold() not in {u.casefold() for u in self.store.units}:
                aot = self.store.entity(entity_set).aot_name
                lines.append(f"Warning: The value '{unit}' in field 'Unit' is not found in the related table 'Units'.")
                lines.append(f"Warning: validateField failed on field '{aot}.{fld}'.")
        if lines:
            raise self._fail(entity_set, lines)

    def _create_product_creation(self, values: dict[str, Any]) -> dict[str, Any]:
        lines: list[str] = []
        self._required(values, lines, "ItemNumber", "Item number")
        self._required(values, lines, "ProductName", "Product name")
        if lines:
            raise self._fail("ReleasedProductCreationsV2", lines)
        texts = {k: str(values.pop(k)) for k in PRODUCT_TEXT_FIELDS if k in values}
        released = self.store.entity("ReleasedProductsV2").properties
        product = {k: v for k, v in values.items() if k in released}
        self._check_duplicate("ReleasedProductsV2", product, report_as="ReleasedProductCreationsV2")
        self._prepare_ReleasedProductsV2(product)
        record = self.store.insert("ReleasedProductsV2", product)
        self.set_product_texts(record, texts)
        return record

    def set_product_texts(self, record: dict[str, Any], texts: dict[str, str]) -> None:
        key = (str(record["dataAreaId"]).casefold(), str(record["ItemNumber"]).casefold())
        before = self.store.product_texts.get(key)
        self.store.product_texts[key] = {**(before or {}), **texts}

        def undo() -> None:
            if before is None:
                self.store.product_texts.pop(key, None)
            else:
                self.store.product_texts[key] = before

        self.store._remember(undo)

    def _prepare_SalesOrderHeadersV2(self, values: dict[str, Any]) -> None:
        company = values["dataAreaId"]
        if not values.get("SalesOrderNumber"):
            values["SalesOrderNumber"] = self.store.next_number("SalesOrderNumber", company)
        elif not self.options.manual_sales_order_numbers:
            # Exact F&O wording UNCONFIRMED (reference section 2).
            raise self._fail(
                "SalesOrderHeadersV2",
                [
                    f"Error: The number sequence for Sales order does not allow manual entry ('{values['SalesOrderNumber']}')."
                ],
            )
        lines: list[str] = []
        self._required(values, lines, "OrderingCustomerAccountNumber", "Customer account")
        customer = self._related(
            "SalesOrderHeadersV2", lines, values, "OrderingCustomerAccountNumber", "Customer account", "CustomersV3",
            "Customers", {"dataAreaId": company, "CustomerAccount": str(values.get("OrderingCustomerAccountNumber"))},
        )  # fmt: skip
        if customer is not None:
            values.setdefault(
                "InvoiceCustomerAccountNumber", customer.get("InvoiceAccount") or customer["CustomerAccount"]
            )
            values.setdefault("CurrencyCode", customer.get("SalesCurrencyCode", ""))
            values.setdefault("SalesOrderName", customer.get("OrganizationName", ""))
            values.setdefault("DeliveryAddressName", customer.get("OrganizationName", ""))
        self._related(
            "SalesOrderHeadersV2", lines, values, "InvoiceCustomerAccountNumber", "Invoice account", "CustomersV3",
            "Customers", {"dataAreaId": company, "CustomerAccount": str(values.get("InvoiceCustomerAccountNumber"))},
        )  # fmt: skip
        self._related("SalesOrderHeadersV2", lines, values, "CurrencyCode", "Currency", "Currencies", "Currency",
                      {"CurrencyCode": str(values.get("CurrencyCode", ""))})  # fmt: skip
        self._check_dimensions("SalesOrderHeadersV2", lines, values, "DefaultLedgerDimensionDisplayValue")
        if lines:
            raise self._fail("SalesOrderHeadersV2", lines)
        now = datetime.now(UTC)
        for fld in ("RequestedShippingDate", "RequestedReceiptDate"):
            if values.get(fld, EMPTY_DATE) == EMPTY_DATE:
                values[fld] = format_date(now, fld)
        values["OrderCreationDateTime"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        values.setdefault("LanguageId", "en-us")
        values.setdefault("CustomerPostingProfileId", "GEN")

    def _prepare_SalesOrderLines(self, values: dict[str, Any]) -> None:
        company = values["dataAreaId"]
        lines: list[str] = []
        self._required(values, lines, "SalesOrderNumber", "Sales order")
        self._required(values, lines, "ItemNumber", "Item number")
        header = self._related(
            "SalesOrderLines", lines, values, "SalesOrderNumber", "Sales order", "SalesOrderHeadersV2", "Sales orders",
            {"dataAreaId": company, "SalesOrderNumber": str(values.get("SalesOrderNumber"))},
        )  # fmt: skip
        product = self._related(
            "SalesOrderLines", lines, values, "ItemNumber", "Item number", "ReleasedProductsV2", "Items",
            {"dataAreaId": company, "ItemNumber": str(values.get("ItemNumber"))},
        )  # fmt: skip
        if product is not None:
            values.setdefault("SalesUnitSymbol", product.get("SalesUnitSymbol", ""))
            values.setdefault("SalesPrice", product.get("SalesPrice", 0))
            # An unset price unit comes from the item (e.g. 100): LineAmount = qty x price / price unit.
            values.setdefault("SalesPriceQuantity", product.get("SalesPriceQuantity") or 1)
        unit = values.get("SalesUnitSymbol")
        if unit and str(unit).casefold() not in {u.casefold() for u in self.store.units}:
            lines.append(f"Warning: The value '{unit}' in field 'Unit' is not found in the related table 'Units'.")
            lines.append("Warning: validateField failed on field 'SalesOrderLineV2Entity.SalesUnitSymbol'.")
        self._check_dimensions("SalesOrderLines", lines, values, "DefaultLedgerDimensionDisplayValue")
        if lines:
            raise self._fail("SalesOrderLines", lines)
        assert header is not None
        values["SalesOrderNumber"] = header["SalesOrderNumber"]
        if not values.get("InventoryLotId"):
            values["InventoryLotId"] = self.store.next_number("InventoryLotId", company)
        siblings = [r for r in self.store.rows("SalesOrderLines") if same_order(r, header)]
        if not values.get("LineNumber"):
            values["LineNumber"] = max((int(r["LineNumber"]) for r in siblings), default=0) + 1
        values["LineCreationSequenceNumber"] = len(siblings) + 1
        values.setdefault("OrderedSalesQuantity", 1)
        for fld, source in (("CurrencyCode", "CurrencyCode"), ("RequestedShippingDate", "RequestedShippingDate"),
                            ("ShippingSiteId", "DefaultShippingSiteId"),
                            ("ShippingWarehouseId", "DefaultShippingWarehouseId")):  # fmt: skip
            if not values.get(fld) or values.get(fld) == EMPTY_DATE:
                values[fld] = header.get(source, "")
        values.setdefault("SalesOrderLineStatus", "Backorder")
        values["LineAmount"] = _line_amount(values)

    def _check_dimensions(self, entity_set: str, lines: list[str], values: dict[str, Any], fld: str) -> None:
        """Display value vs the active dimension format; value lists only checked when seeded (UNCONFIRMED text)."""
        text = values.get(fld)
        if not text:
            return
        segments = str(text).split(self.options.dimension_delimiter)
        names = self.options.dimension_format
        if len(segments) > len(names):
            lines.append(
                f"Error: The dimension value '{text}' has more segments than the active format "
                f"'{self.options.dimension_delimiter.join(names)}'."
            )
            return
        for name, value in zip(names, segments, strict=False):
            allowed = self.options.dimension_values.get(name)
            if value and allowed is not None and value not in allowed:
                lines.append(f"Error: The value '{value}' of the '{name}' financial dimension does not exist.")

    # ---- update / delete ----------------------------------------------------------------------
    def update(self, entity_set: str, record: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        entity = self.store.entity(entity_set)
        for k in entity.key:
            if k in values and str(values[k]).casefold() != str(record[k]).casefold():
                raise bad_request(f"The key property '{k}' cannot be changed.")
        texts = {k: str(values.pop(k)) for k in PRODUCT_TEXT_FIELDS if k in values}
        merged = {**record, **values}
        if entity_set == "CustomersV3":
            self._validate_customer(merged)
        elif entity_set in ("ReleasedProductsV2", "ReleasedProductCreationsV2"):
            self._validate_product(entity_set, merged)
        elif entity_set == "SalesOrderLines" and values:
            merged["LineAmount"] = _line_amount(merged)
            values["LineAmount"] = merged["LineAmount"]
        updated = self.store.update(_storage_set(entity_set), record, values)
        if texts:
            self.set_product_texts(updated, texts)
        return updated

    def delete(self, entity_set: str, record: dict[str, Any]) -> None:
        if entity_set == "SalesOrderHeadersV2":
            for line in [r for r in self.store.rows("SalesOrderLines") if same_order(r, record)]:
                self.store.delete("SalesOrderLines", line)
        self.store.delete(_storage_set(entity_set), record)


def _storage_set(entity_set: str) -> str:
    return "ReleasedProductsV2" if entity_set == "ReleasedProductCreationsV2" else entity_set


def same_order(line: dict[str, Any], header: dict[str, Any]) -> bool:
    return (
        str(line["dataAreaId"]).casefold() == str(header["dataAreaId"]).casefold()
        and str(line["SalesOrderNumber"]).casefold() == str(header["SalesOrderNumber"]).casefold()
    )


def _line_amount(values: dict[str, Any]) -> int | float:
    qty = Decimal(str(values.get("OrderedSalesQuantity", 0)))
    price = Decimal(str(values.get("SalesPrice", 0)))
    per = Decimal(str(values.get("SalesPriceQuantity") or 1))
    pct = Decimal(str(values.get("LineDiscountPercentage", 0)))
    discount = Decimal(str(values.get("LineDiscountAmount", 0)))
    amount = (qty * price / per) * (1 - pct / 100) - discount * qty
    amount = amount.quantize(Decimal("0.01"))
    return int(amount) if amount == amount.to_integral_value() else float(amount)
