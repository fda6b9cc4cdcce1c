"""Typed lookups of the master data the flows read: customers and released products of one company.

A mixin of D365Client (kept apart so the client module holds the OData plumbing): every lookup is a
`$filter` query ordered by the key (see odata.py), item numbers exact and case-insensitive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from connector.d365 import odata
from connector.d365.models import Customer, D365Entity, ReleasedProduct, ReleasedProductName

E = TypeVar("E", bound=D365Entity)


class _Reads(Protocol):
    """What the lookups use of D365Client (its generic OData reads)."""

    async def find_by_key(
        self, entity_set: str, key: Mapping[str, odata.Scalar], *, select: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
    ) -> dict[str, Any] | None: ...  # fmt: skip

    def iter_records(self, model: type[E], **options: Any) -> AsyncIterator[E]: ...

    def _model(self, model: type[E], data: Mapping[str, Any], what: str) -> E: ...


def select_for(model: type[D365Entity]) -> list[str]:
    """`$select` list of a read model: its OData names minus annotations and navigation properties."""
    names = [f.alias or n for n, f in model.model_fields.items()]
    return [n for n in names if not n.startswith("@") and n != "SalesOrderLines"]


def customer_attribute(odata_name: str) -> str:
    """The Customer model attribute behind an OData property name (e.g. NameAlias -> name_alias)."""
    for name, info in Customer.model_fields.items():
        if info.alias == odata_name:
            return name
    raise ValueError(f"Customer has no field {odata_name}")


class MasterDataLookups:
    async def find_customer(self: _Reads, account: str, legal_entity: str) -> Customer | None:
        row = await self.find_by_key(
            "CustomersV3", {"dataAreaId": legal_entity.lower(), "CustomerAccount": account}, select=select_for(Customer)
        )
        return None if row is None else self._model(Customer, row, "GET CustomersV3")

    async def find_customers_by_name(self: _Reads, name: str, country: str | None, legal_entity: str) -> list[Customer]:
        """Organizations with this exact name (case-insensitive), optionally in a country.

        `country` is the F&O CountryRegionId (`USA`), the field CustomerCreate writes.
        """
        clauses = [odata.eq("OrganizationName", name)]
        if country:
            clauses.append(odata.eq("AddressCountryRegionId", country.upper()))
        found = [c async for c in self.iter_records(Customer, filter=odata.and_(*clauses), legal_entity=legal_entity)]
        # `*` in the name is an F&O wildcard: keep only exact matches.
        return [c for c in found if (c.organization_name or "").casefold() == name.casefold()]

    async def find_customers_by_field(self: _Reads, field: str, value: str, legal_entity: str) -> list[Customer]:
        """Customers whose `field` equals `value` (case-insensitive, as F&O compares; `*` neighbours left out)."""
        select = select_for(Customer)
        rows = self.iter_records(
            Customer,
            filter=odata.eq(field, value),
            legal_entity=legal_entity,
            select=select if field in select else [*select, field],
        )
        return [
            c async for c in rows if str(getattr(c, customer_attribute(field), "") or "").casefold() == value.casefold()
        ]

    def iter_customers(self: _Reads, legal_entity: str) -> AsyncIterator[Customer]:
        """All customers of one company, in key order (stable across pages)."""
        return self.iter_records(Customer, legal_entity=legal_entity, orderby=["CustomerAccount asc"])

    def iter_released_products(self: _Reads, legal_entity: str) -> AsyncIterator[ReleasedProduct]:
        return self.iter_records(ReleasedProduct, legal_entity=legal_entity, orderby=["ItemNumber asc"])

    async def product_names(self: _Reads, legal_entity: str) -> dict[str, str]:
        """ItemNumber -> ProductName: ReleasedProductsV2 has no name, ReleasedProductCreationsV2 has.

        See docs/api-facts.md, D365 §2.
        """
        rows = self.iter_records(ReleasedProductName, legal_entity=legal_entity)
        return {row.item_number: row.product_name async for row in rows if row.product_name}

    async def product_name(self: _Reads, item_number: str, legal_entity: str) -> str | None:
        """One item's ProductName (ReleasedProductCreationsV2 by key); None when absent or empty."""
        row = await self.find_by_key(
            "ReleasedProductCreationsV2",
            {"dataAreaId": legal_entity.lower(), "ItemNumber": item_number},
            select=select_for(ReleasedProductName),
        )
        if row is None:
            return None
        return self._model(ReleasedProductName, row, "GET ReleasedProductCreationsV2").product_name or None

    async def find_item(self: _Reads, item_number: str, legal_entity: str) -> ReleasedProduct | None:
        """The released product with this item number (exact, never trimmed; case-insensitive as in F&O)."""
        row = await self.find_by_key(
            "ReleasedProductsV2",
            {"dataAreaId": legal_entity.lower(), "ItemNumber": item_number},
            select=select_for(ReleasedProduct),
        )
        return None if row is None else self._model(ReleasedProduct, row, "GET ReleasedProductsV2")
