"""`reconcile --since`: built deals against what D365 holds after people changed it; read-only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from connector.reconcile.run import parse_since, reconcile
from tests.e2e.test_cli import cli
from tests.fixtures.stack import E2E


async def tamper(e2e: E2E) -> None:
    """What people do in D365 after the build: delete a line, change a quantity, key an order by hand."""
    d365 = await e2e.rt.d365()
    (order_101,) = e2e.orders("PD-101")
    line = next(x for x in order_101["SalesOrderLines"] if x["CustomersLineNumber"] == 2)
    await d365.delete("SalesOrderLines", {"dataAreaId": "usmf", "InventoryLotId": line["InventoryLotId"]})
    (order_102,) = e2e.orders("PD-102")
    line = next(x for x in order_102["SalesOrderLines"] if x["CustomersLineNumber"] == 1)
    await d365.update("SalesOrderLines", {"dataAreaId": "usmf", "InventoryLotId": line["InventoryLotId"]},
                      {"OrderedSalesQuantity": 13})  # fmt: skip
    await d365.create(
        "SalesOrderHeadersV2",
        {"dataAreaId": "usmf", "SalesOrderNumber": "HAND-1", "OrderingCustomerAccountNumber": "US-002",
         "CurrencyCode": "USD", "CustomersOrderReference": "PD-110"},
    )  # fmt: skip


def writes(e2e: E2E) -> tuple[int, int]:
    pipedrive = [r for r in e2e.stack.pipedrive.requests() if r["method"] not in ("GET", "HEAD")]
    return len(e2e.d365_writes()), len(pipedrive)


async def test_reconcile_finds_each_kind_of_mismatch_and_writes_nothing(e2e: E2E) -> None:
    await e2e.win(101, 102, 103, 108)
    await e2e.drain()
    e2e.stack.pipedrive.set_deal_status(106, "won")  # won, but its webhook and the poll never ran
    for archived in (103, 106):  # archived deals are only in Pipedrive's /deals/archived: still counted
        e2e.stack.pipedrive.change_deal(archived, is_archived=True)
    await tamper(e2e)

    before = writes(e2e)
    report = await reconcile(
        await e2e.rt.order_deps(), datetime.now(UTC) - timedelta(days=30), stale_after=e2e.rt.settings.job_stale_seconds
    )
    assert writes(e2e) == before, "reconcile wrote something"

    rows = {row.deal_id: row for row in report.deals}
    assert set(rows) == {101, 102, 103, 106, 108}
    assert rows[103].status == "ok" and rows[103].differences == []
    assert rows[101].status == "mismatch"
    assert "line 2 (SEAL-KIT) is missing from the order" in rows[101].differences
    assert any(d.startswith("order total") for d in rows[101].differences)
    assert rows[102].status == "mismatch"
    assert "line 1: quantity is 13, the deal's is 12" in rows[102].differences
    assert rows[106].status == "missing"
    assert rows[108].status == "failed" and "has no code" in rows[108].differences[0]
    (orphan,) = report.orphans
    assert (orphan.order_number, orphan.deal_id) == ("HAND-1", 110) and orphan.why == "deal 110 is open, not won"
    assert report.mismatches == 4


async def test_cli_reconcile_table_json_csv_and_exit_codes(e2e: E2E) -> None:
    await e2e.win(101, 102)
    await e2e.drain()
    code, result, text = await cli(e2e, "reconcile", "--since", "30d", "--json")
    assert code == 0, text
    assert result["mismatches"] == 0 and [d["status"] for d in result["deals"]] == ["ok", "ok"]

    await tamper(e2e)
    code, _, text = await cli(e2e, "reconcile", "--since", "30d", "--csv")
    assert code == 1, text
    found = list(csv.DictReader(io.StringIO(text.split("\n\n")[0])))
    assert {"kind": "order", "order_number": "HAND-1", "status": "no won deal"}.items() <= found[-1].items()
    assert any(r["deal_id"] == "101" and "missing from the order" in r["detail"] for r in found)

    code, _, text = await cli(e2e, "reconcile")
    assert code == 1 and "mismatch" in text
    code, _, text = await cli(e2e, "reconcile", "--since", "yesterday")
    assert code == 2 and "--since 'yesterday'" in text


@pytest.mark.parametrize(("text", "days"), [("30d", 30), ("12h", 0.5), ("90m", 90 / 1440), ("2026-11-01", None)])
def test_parse_since(text: str, days: float | None) -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    moment = parse_since(text, now)
    if days is None:
        assert moment == datetime(2026, 11, 1, tzinfo=UTC)
    else:
        assert now - moment == timedelta(days=days)


async def test_csv_cells_typed_by_people_never_run_as_formulas(e2e: E2E) -> None:
    """CSV injection: an order number a D365 user keyed as a formula is exported as text, not run by the sheet."""
    from connector.reconcile.render import to_csv

    d365 = await e2e.rt.d365()
    formula = '=HYPERLINK("http://x.example","ok")'
    await d365.create(
        "SalesOrderHeadersV2",
        {"dataAreaId": "usmf", "SalesOrderNumber": formula[:20], "OrderingCustomerAccountNumber": "US-002",
         "CurrencyCode": "USD", "CustomersOrderReference": "PD-110"},
    )  # fmt: skip
    report = await reconcile(
        await e2e.rt.order_deps(), datetime.now(UTC) - timedelta(days=30), stale_after=e2e.rt.settings.job_stale_seconds
    )
    (row,) = [r for r in csv.DictReader(io.StringIO(to_csv(report))) if r["kind"] == "order"]
    assert row["order_number"] == "'" + formula[:20]
    assert all(not value.startswith(("=", "+", "-", "@")) for value in row.values())
