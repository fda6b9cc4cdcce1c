"""Sales orders and customers in F&O: the reads and writes of the order build (docs/architecture.md, flow 1).

A mixin of D365Client, like `lookups.py`: the client module holds the OData plumbing (send, pages, keys,
`$batch`), this one the order-shaped calls on top of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from connector.d365 import odata
from connector.d365.batch import Operation
from connector.d365.lookups import select_for
from connector.d365.models import (
    Customer,
    CustomerCreate,
    D365Create,
    D365Entity,
    SalesOrderHeader,
    SalesOrderHeaderCreate,
    SalesOrderLine,
    SalesOrderLineCreate,
)
from connector.errors import ConfigError

E = TypeVar("E", bound=D365Entity)


class _OData(Protocol):
    """What the order calls use of D365Client (its generic OData reads and writes)."""

    def iter_entities(
        self, entity_set: str, *, filter: str | None = None, select: Sequence[str] | None = None,
        orderby: Sequence[str] | None = None, expand: Sequence[str] | None = None, top: int | None = None,
        cross_company: bool = False, legal_entity: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]: ...  # fmt: skip

    async def find_by_key(
        self, entity_set: str, key: Mapping[str, odata.Scalar], *, select: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
    ) -> dict[str, Any] | None: ...  # fmt: skip

    async def create(self, entity_set: str, payload: Mapping[str, Any] | D365Create) -> dict[str, Any]: ...

    async def execute_changeset(self, operations: Sequence[Operation]) -> list[dict[str, Any]]: ...

    def _model(self, model: type[E], data: Mapping[str, Any], what: str) -> E: ...

    def _created(self, model: type[E], data: Mapping[str, Any], what: str) -> E: ...


class SalesOrders:
    async def find_order_by_reference(
        self: _OData, reference: str, legal_entity: str, *, field: str = "CustomersOrderReference"
    ) -> SalesOrderHeader | None:
        """The (oldest) sales order carrying `reference` in `field`, with its lines; None if there is none."""
        select = select_for(SalesOrderHeader)
        rows = self.iter_entities(
            "SalesOrderHeadersV2",
            filter=odata.eq(field, reference),
            legal_entity=legal_entity,
            orderby=["SalesOrderNumber asc"],
            expand=["SalesOrderLines"],
            select=select if field in select else [*select, field],
        )
        async for row in rows:
            # `*` in the reference is an F&O wildcard: keep only the exact match.
            if str(row.get(field, "")).casefold() == reference.casefold():
                return self._model(SalesOrderHeader, row, "GET SalesOrderHeadersV2")
        return None

    async def get_order(self: _OData, number: str, legal_entity: str) -> SalesOrderHeader | None:
        """One sales order by its number, with its lines; None when there is none."""
        row = await self.find_by_key(
            "SalesOrderHeadersV2",
            {"dataAreaId": legal_entity.lower(), "SalesOrderNumber": number},
            select=select_for(SalesOrderHeader),
            expand=["SalesOrderLines"],
        )
        return None if row is None else self._model(SalesOrderHeader, row, "GET SalesOrderHeadersV2")

    async def create_customer(self: _OData, customer: CustomerCreate) -> Customer:
        return self._created(Customer, await self.create("CustomersV3", customer), "POST CustomersV3")

    async def create_sales_order(
        self: _OData, header: SalesOrderHeaderCreate, lines: Sequence[SalesOrderLineCreate]
    ) -> tuple[str, list[SalesOrderLine]]:
        """Header and all lines in ONE changeset (all or nothing); the header must carry its number.

        This is the documented way (Microsoft's header+lines changeset sample): every line names the header's
        SalesOrderNumber. There is no `$n` Content-ID reference: F&O saves a changeset's operations together,
        so a number-sequence key does not exist when `$n` would be resolved (docs/api-facts.md, D365 §4); with
        a D365 number sequence use `create_order_header`, then `add_order_lines`.
        """
        if not header.sales_order_number:
            raise ConfigError("a header and its lines in one changeset need the order number on the header")
        operations = [Operation(method="POST", path="SalesOrderHeadersV2", body=header.to_payload())]
        operations += line_operations(header.data_area_id, header.sales_order_number, lines)
        results = await self.execute_changeset(operations)
        created = self._created(SalesOrderHeader, results[0], "POST SalesOrderHeadersV2")
        created_lines = [self._created(SalesOrderLine, r, "POST SalesOrderLines") for r in results[1:]]
        return created.sales_order_number, created_lines

    async def create_order_header(self: _OData, header: SalesOrderHeaderCreate) -> SalesOrderHeader:
        """The header alone (its number from D365's number sequence when it carries none)."""
        return self._created(
            SalesOrderHeader, await self.create("SalesOrderHeadersV2", header), "POST SalesOrderHeadersV2"
        )

    async def add_order_lines(
        self: _OData, legal_entity: str, number: str, lines: Sequence[SalesOrderLineCreate]
    ) -> list[SalesOrderLine]:
        """Lines of an existing order in one changeset (all or nothing), each carrying its SalesOrderNumber."""
        results = await self.execute_changeset(line_operations(legal_entity.lower(), number, lines))
        return [self._created(SalesOrderLine, r, "POST SalesOrderLines") for r in results]


def line_operations(company: str, number: str, lines: Sequence[SalesOrderLineCreate]) -> list[Operation]:
    """One POST per line, each carrying the order's company and number (no `$n` reference)."""
    if not lines:
        raise ConfigError("a sales order needs at least one line")
    operations = []
    for line in lines:
        body = line.to_payload()
        if str(body.get("dataAreaId", company)).lower() != company.lower():
            raise ConfigError(f"line company {body['dataAreaId']} differs from header company {company}")
        body["dataAreaId"] = company
        body["SalesOrderNumber"] = number
        operations.append(Operation(method="POST", path="SalesOrderLines", body=body))
    return operations
