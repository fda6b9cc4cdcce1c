"""The preview as tables for a person (the `--json` form is the Preview model itself)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from connector.preview import Preview


def render_preview(console: Console, preview: Preview) -> None:
    if not preview.ok:
        console.print(f"[red]deal {preview.deal_id}: a build would fail[/red]")
        for problem in preview.problems:
            console.print(f"  - {problem}", highlight=False)
        return
    head = preview.header or {}
    customer = preview.customer
    console.print(f"deal {preview.deal_id} -> legal entity {preview.legal_entity}, reference {preview.reference}")
    if preview.deal_status != "won":
        console.print(
            f"[yellow]the deal is {preview.deal_status}: this is the order a build makes once it is won[/yellow]"
        )
    if preview.existing_order:
        console.print(
            f"[yellow]order {preview.existing_order} already carries this reference: a build adopts it[/yellow]"
        )
    if customer is not None:
        if customer.how == "new":
            new = customer.new_customer or {}
            console.print(
                f"customer: NEW {new.get('OrganizationName') or new.get('PersonLastName') or ''} "
                f"(group {new.get('CustomerGroupId')}, {new.get('SalesCurrencyCode')}, "
                f"account {customer.account or 'from the number sequence'})",
                highlight=False,
            )
        else:
            console.print(f"customer: {customer.account} ({customer.how})", highlight=False)
    number = head.get("SalesOrderNumber") or "from D365's number sequence"
    console.print(f"order number: {number}; currency {preview.currency}; dimensions {preview.dimensions or '-'}")
    table = Table("line", "item", "quantity", "unit", "price", "discount %", "discount/unit", "site", "warehouse")
    for line in preview.lines:
        table.add_row(
            str(line.get("CustomersLineNumber", "")), str(line.get("ItemNumber", "")),
            str(line.get("OrderedSalesQuantity", "")), str(line.get("SalesUnitSymbol", "")),
            str(line.get("SalesPrice", "")), str(line.get("LineDiscountPercentage", "")),
            str(line.get("LineDiscountAmount", "")), str(line.get("ShippingSiteId", "")),
            str(line.get("ShippingWarehouseId", "")),
        )  # fmt: skip
    console.print(table)
    console.print(f"net total {preview.expected_total} {preview.currency} (deal value {preview.deal_value or '-'})")
