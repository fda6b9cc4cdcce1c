"""The preview as tables for a person (the `--json` form is the Preview model itself)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from connector.preview import Preview
from connector.terminal import shown


def render_preview(console: Console, preview: Preview) -> None:
    if not preview.ok:
        console.print(f"[red]deal {preview.deal_id}: a build would fail[/red]")
        for problem in preview.problems:
            console.print(f"  - {shown(problem)}", highlight=False)
        return
    head = preview.header or {}
    customer = preview.customer
    console.print(
        f"deal {preview.deal_id} -> legal entity {shown(preview.legal_entity)}, reference {shown(preview.reference)}"
    )
    if preview.deal_status != "won":
        console.print(
            f"[yellow]the deal is {shown(preview.deal_status)}: this is the order a build makes once it is won[/yellow]"
        )
    if preview.existing_order:
        console.print(
            f"[yellow]order {shown(preview.existing_order)} already carries this reference: a build adopts it[/yellow]"
        )
    if customer is not None:
        if customer.how == "new":
            new = customer.new_customer or {}
            console.print(
                f"customer: NEW {shown(new.get('OrganizationName') or new.get('PersonLastName'))} "
                f"(group {shown(new.get('CustomerGroupId'))}, {shown(new.get('SalesCurrencyCode'))}, "
                f"account {shown(customer.account or 'from the number sequence')})",
                highlight=False,
            )
        else:
            console.print(f"customer: {shown(customer.account)} ({customer.how})", highlight=False)
    number = head.get("SalesOrderNumber") or "from D365's number sequence"
    console.print(
        f"order number: {shown(number)}; currency {shown(preview.currency)}; "
        f"dimensions {shown(preview.dimensions or '-')}"
    )
    table = Table("line", "item", "quantity", "unit", "price", "discount %", "discount/unit", "site", "warehouse")
    columns = ("CustomersLineNumber", "ItemNumber", "OrderedSalesQuantity", "SalesUnitSymbol", "SalesPrice",
               "LineDiscountPercentage", "LineDiscountAmount", "ShippingSiteId", "ShippingWarehouseId")  # fmt: skip
    for line in preview.lines:
        table.add_row(*(shown(line.get(column, "")) for column in columns))
    console.print(table)
    console.print(
        f"net total {preview.expected_total} {shown(preview.currency)} (deal value {shown(preview.deal_value or '-')})"
    )
