"""`preview DEAL`: what a build would write, exactly, with nothing written anywhere; a build's failures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connector.preview import preview_deal
from tests.e2e.test_cli import cli
from tests.fixtures.stack import E2E


def same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, int | float | Decimal) and not isinstance(expected, bool):
        return Decimal(str(expected)) == Decimal(str(actual))
    if isinstance(expected, str) and isinstance(actual, str) and expected[:4].isdigit() and "T" in expected:
        return expected[:10] == actual[:10]  # dates: D365 answers them with its own time part
    return bool(expected == actual)


def writes(e2e: E2E) -> tuple[int, int]:
    pipedrive = [r for r in e2e.stack.pipedrive.requests() if r["method"] not in ("GET", "HEAD")]
    return len(e2e.d365_writes()), len(pipedrive)


@pytest.mark.parametrize("deal_id", [101, 102])
async def test_preview_equals_what_the_build_then_writes(e2e: E2E, deal_id: int) -> None:
    e2e.stack.pipedrive.set_deal_status(deal_id, "won")
    before = writes(e2e)
    preview = await preview_deal(await e2e.rt.order_deps(), deal_id)
    assert preview.ok, preview.problems
    assert writes(e2e) == before, "preview wrote something"
    assert await e2e.rt.state.idmap.all("item") == [] and await e2e.job(deal_id) is None

    await e2e.rt.queues.enqueue_order(deal_id, reason="poll", correlation_id="t")
    await e2e.drain()
    (order,) = e2e.orders(preview.reference)
    assert preview.header is not None
    for key, value in preview.header.items():
        if key == "OrderingCustomerAccountNumber" and preview.customer and preview.customer.how == "new":
            continue  # the new customer's account comes from D365's sequence at the build
        assert same(value, order[key]), (key, value, order[key])
    lines = {line["CustomersLineNumber"]: line for line in order["SalesOrderLines"]}
    assert len(lines) == len(preview.lines)
    for planned in preview.lines:
        written = lines[planned["CustomersLineNumber"]]
        for key, value in planned.items():
            if key != "SalesOrderNumber":  # filled from the header at the build
                assert same(value, written[key]), (key, value, written[key])


async def test_preview_of_a_failing_deal_names_the_build_s_reason(e2e: E2E) -> None:
    preview = await preview_deal(await e2e.rt.order_deps(), 108)
    assert not preview.ok
    await e2e.win(108)
    await e2e.drain()
    job = await e2e.job(108)
    assert job.state == "failed" and job.last_error == "; ".join(preview.problems)

    # An open deal is planned as it would be built once won (trying a mapping before go-live).
    open_deal = await preview_deal(await e2e.rt.order_deps(), 103)
    assert open_deal.ok and open_deal.deal_status == "open" and open_deal.lines


async def test_preview_shows_a_new_customer_and_an_existing_order(e2e: E2E) -> None:
    await e2e.win(101)
    await e2e.drain()
    again = await preview_deal(await e2e.rt.order_deps(), 101)
    assert again.ok and again.existing_order == e2e.orders("PD-101")[0]["SalesOrderNumber"]
    assert again.customer is not None and again.customer.how in ("idmap", "account_field")


async def test_cli_preview_json_and_table(e2e: E2E) -> None:
    e2e.stack.pipedrive.set_deal_status(101, "won")
    code, result, text = await cli(e2e, "preview", "101", "--json")
    assert code == 0, text
    assert result["ok"] and result["reference"] == "PD-101" and result["lines"]
    code, _, text = await cli(e2e, "preview", "108")
    assert code == 1 and "a build would fail" in text and "has no code" in text
