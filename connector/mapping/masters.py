"""D365 masters -> Pipedrive: released products to products, customers to organizations.

Payloads carry custom fields by NAME; the flow converts them to hash keys with the client's
resolver (`CustomFields.to_hashes`). `content_hash` is what the id map stores, so a resync writes
only records whose pushed content changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from connector.d365.models import Customer, ReleasedProduct
from connector.mapping.config import MappingConfig
from connector.pipedrive.models import AddressInput, OrganizationInput, ProductInput, ProductPriceInput


def product_from_released(
    released: ReleasedProduct, *, name: str | None = None, currency: str | None = None
) -> ProductInput:
    """The Pipedrive product for a released product; its `code` IS the D365 ItemNumber.

    `name` is the product name (ReleasedProductsV2 has none; it comes from ReleasedProductCreationsV2),
    else the search name, else the item number. The item number is kept exactly, spaces included,
    because it is the D365 key. A price is sent only with the company `currency` and when D365 has
    one, per ONE unit (SalesPrice / SalesPriceQuantity).
    """
    title = _first(name, released.product_search_name, released.search_name, released.item_number)
    prices = None
    if currency and released.sales_price > 0:
        per = released.sales_price_quantity if released.sales_price_quantity > 0 else Decimal(1)
        unit_price = released.sales_price / per
        prices = [ProductPriceInput(price=float(unit_price), currency=currency.strip().upper())]
    fields: dict[str, Any] = {"name": title, "code": released.item_number}
    if released.sales_unit_symbol.strip():
        fields["unit"] = released.sales_unit_symbol.strip()
    if prices is not None:
        fields["prices"] = prices
    return ProductInput(**fields)


def organization_from_customer(customer: Customer, cfg: MappingConfig) -> OrganizationInput:
    """The Pipedrive organization for a D365 customer, with the account on the configured field.

    The country goes back as the text sellers use (the reverse of `customer.country_map`), else the
    D365 id as is.
    """
    fields: dict[str, Any] = {"name": customer.display_name.strip() or customer.customer_account}
    account_field = cfg.pipedrive_fields.org_customer_account
    if account_field:
        fields["custom_fields"] = {account_field: customer.customer_account}
    address = _address(customer, cfg)
    if address is not None:
        fields["address"] = address
    return OrganizationInput(**fields)


def _address(customer: Customer, cfg: MappingConfig) -> AddressInput | None:
    full = ", ".join(part.strip() for part in (customer.full_primary_address or "").splitlines() if part.strip())
    composed = ", ".join(
        p.strip()
        for p in (customer.address_street, customer.address_zip_code, customer.address_city)
        if p and p.strip()
    )
    value = full or composed
    if not value:
        return None
    country_id = (customer.address_country_region_id or "").strip().upper()
    country = _country_text(country_id, cfg.customer.country_map) if country_id else None
    return AddressInput(
        value=value,
        country=country,
        locality=_clean(customer.address_city),
        postal_code=_clean(customer.address_zip_code),
        admin_area_level_1=_clean(customer.address_state),
    )


def _country_text(country_id: str, country_map: Mapping[str, str]) -> str:
    # country_map keys are case-folded seller texts; return the first one that maps to this id.
    for text, mapped in country_map.items():
        if mapped == country_id:
            return text.title() if text.islower() else text
    return country_id


def content_hash(payload: BaseModel | Mapping[str, Any]) -> str:
    """Stable SHA-256 of a payload: key order, float/int spelling and unset fields do not change it."""
    data = payload.model_dump(mode="json", exclude_none=True) if isinstance(payload, BaseModel) else payload
    canonical = json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        number = number.normalize()
        return format(number, "f")  # 1, 1.0 and Decimal("1.00") hash alike
    return str(value)


def _first(*candidates: str | None) -> str:
    return next((c.strip() for c in candidates if c and c.strip()), "")


def _clean(value: str | None) -> str | None:
    return value.strip() or None if value else None
