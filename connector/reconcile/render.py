"""The reconcile report as a table for a person and as CSV for a spreadsheet (one row per finding)."""

from __future__ import annotations

import csv
import io

from rich.console import Console
from rich.table import Table

from connector.reconcile.run import MISMATCHES, ReconcileReport
from connector.terminal import shown

CSV_COLUMNS = ("kind", "deal_id", "status", "legal_entity", "order_number", "reference", "detail")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
STYLE = {"ok": "green", "mismatch": "red", "missing": "red", "failed": "yellow", "pending": "cyan"}


def rows(report: ReconcileReport) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for deal in report.deals:
        base = {"kind": "deal", "deal_id": deal.deal_id, "status": deal.status, "legal_entity": deal.legal_entity,
                "order_number": deal.order_number or "", "reference": deal.reference}  # fmt: skip
        out += [{**base, "detail": text} for text in deal.differences] or [{**base, "detail": ""}]
    for orphan in report.orphans:
        out.append({"kind": "order", "deal_id": orphan.deal_id or "", "status": "no won deal",
                    "legal_entity": orphan.legal_entity, "order_number": orphan.order_number,
                    "reference": orphan.reference, "detail": orphan.why})  # fmt: skip
    return out


def to_csv(report: ReconcileReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: inert(v) for k, v in row.items()} for row in rows(report))
    return buffer.getvalue()


def inert(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (OWASP CSV injection: = + - @ tab CR first) gets a
    leading apostrophe: order numbers and references are typed by people in D365 and Pipedrive."""
    if isinstance(value, str) and value[:1] in FORMULA_START:
        return "'" + value
    return value


def render_reconcile(console: Console, report: ReconcileReport) -> None:
    console.print(f"won deals since {report.since:%Y-%m-%d %H:%M} UTC: {len(report.deals)}")
    table = Table("deal", "status", "order", "company", "finding")
    for deal in report.deals:
        style = STYLE[deal.status]
        table.add_row(str(deal.deal_id), f"[{style}]{deal.status}[/{style}]", shown(deal.order_number),
                      shown(deal.legal_entity), "\n".join(map(shown, deal.differences)))  # fmt: skip
    console.print(table)
    if report.orphans:
        orphans = Table("order", "company", "reference", "finding", title="orders with our reference but no won deal")
        for orphan in report.orphans:
            orphans.add_row(*map(shown, (orphan.order_number, orphan.legal_entity, orphan.reference, orphan.why)))
        console.print(orphans)
    bad = sum(1 for d in report.deals if d.status in MISMATCHES) + len(report.orphans)
    summary = ", ".join(f"{v} {k}" for k, v in report.counts.items() if v)
    console.print(f"{summary or 'nothing in the period'}; {bad} mismatch(es)")
