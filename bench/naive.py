"""Benchmark 5: the naive flow, side by side. What an iPaaS recipe for "won deal -> sales order" does, step by
step, against the same simulators, rate limits and latency: read the deal and its products, then per line
read the Pipedrive product (for its code) and look the item up in D365; read the organization and search the
D365 customer by name every time (no id map); POST the header, then one POST per line; write the order
number back. It has the same HTTP clients (and so the same retry and pacing) as the connector, so the
difference is the flow alone. Bench-only: nothing here ships.
"""

from __future__ import annotations

import asyncio
import time

from bench.harness import BENCH_PRODUCT_BASE, Bench, bench_org, bench_stack, calls_since, seeds, us_deal
from bench.report import table
from connector.d365 import odata
from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.pipedrive.ratelimit import RateLimits
from connector.runtime import Runtime

KNOWN_ORG = 1  # Contoso Retail San Diego, a D365 customer in usmf
FIRST_DEAL = 30_000


async def naive_order(rt: Runtime, deal_id: int) -> str:
    """One won deal -> one D365 sales order, the way a recipe of generic steps does it."""
    pipedrive, d365 = await rt.pipedrive(), await rt.d365()
    deal = await pipedrive.get_deal(deal_id)
    lines = await pipedrive.get_deal_products(deal_id)
    items = []
    for line in lines:  # "Get product" then "Find record in D365", once per line
        product = await pipedrive.get_product(line.product_id)
        found = [r async for r in d365.iter_entities(
            "ReleasedProductsV2", filter=odata.eq("ItemNumber", product.code or ""), legal_entity="usmf",
            select=["ItemNumber", "SalesUnitSymbol"])]  # fmt: skip
        if not found:
            raise RuntimeError(f"item {product.code} not released")
        items.append((line, found[0]))
    assert deal.org_id is not None
    org = await pipedrive.get_organization(deal.org_id)  # "Get organization", every time
    customers = [r async for r in d365.iter_entities(
        "CustomersV3", filter=odata.eq("OrganizationName", org.name), legal_entity="usmf",
        select=["CustomerAccount"])]  # fmt: skip
    if not customers:
        raise RuntimeError(f"no D365 customer named {org.name!r}")
    header = await d365.create("SalesOrderHeadersV2", {
        "dataAreaId": "usmf", "OrderingCustomerAccountNumber": customers[0]["CustomerAccount"],
        "CurrencyCode": deal.currency, "CustomersOrderReference": f"PD-{deal_id}"})  # fmt: skip
    number = header["SalesOrderNumber"]
    for line, item in items:  # one POST per line
        await d365.create("SalesOrderLines", {
            "dataAreaId": "usmf", "SalesOrderNumber": number, "ItemNumber": item["ItemNumber"],
            "OrderedSalesQuantity": float(line.quantity), "SalesPrice": float(line.item_price),
            "SalesUnitSymbol": item["SalesUnitSymbol"], "SalesPriceQuantity": 1})  # fmt: skip
    fields = await rt.custom_fields("deal")
    field = await fields.code_for(rt.mapping.pipedrive_fields.deal_order_number or "")
    await pipedrive.update_deal_fields(deal_id, {field: number})
    return str(number)


def _products(n: int) -> list[int]:
    return [BENCH_PRODUCT_BASE + i for i in range(1, n + 1)]


async def _ours(bench: Bench, deal_id: int) -> tuple[int, int]:
    pd_mark, d_mark = len(bench.pipedrive_log()), len(bench.d365_log())
    stats = await bench.win_and_build(deal_id)
    if stats.outcomes != {"created": 1}:
        raise RuntimeError(f"deal {deal_id}: {stats}")
    calls = calls_since(bench, pd_mark, d_mark)
    return calls.pipedrive_total, calls.d365_total


async def _naive(bench: Bench, deal_id: int) -> tuple[int, int]:
    bench.stack.pipedrive.set_deal_status(deal_id, "won")
    pd_mark, d_mark = len(bench.pipedrive_log()), len(bench.d365_log())
    await naive_order(bench.rt, deal_id)
    calls = calls_since(bench, pd_mark, d_mark)
    return calls.pipedrive_total, calls.d365_total


async def _rate(bench: Bench, deal_ids: list[int], workers: int, flow: str) -> float:
    """Orders per minute for `deal_ids` with `workers` at once (ours: the queue pump; naive: a semaphore)."""
    started = time.perf_counter()
    if flow == "ours":
        for deal_id in deal_ids:
            bench.stack.pipedrive.set_deal_status(deal_id, "won")
            await bench.rt.queues.enqueue_order(deal_id, reason="webhook", correlation_id=f"rate-{deal_id}")
        from bench.harness import drain_all

        stats = await drain_all(bench.rt, batch_size=workers)
        if stats.outcomes.get("created") != len(deal_ids):
            raise RuntimeError(f"ours: {stats}")
    else:
        gate = asyncio.Semaphore(workers)

        async def one(deal_id: int) -> None:
            async with gate:
                bench.stack.pipedrive.set_deal_status(deal_id, "won")
                await naive_order(bench.rt, deal_id)

        await asyncio.gather(*(one(d) for d in deal_ids))
    return len(deal_ids) / (time.perf_counter() - started) * 60


async def calls_by_lines(azurite: Azurite, lines: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """(Pipedrive, D365) calls of one naive order per line count, after a warm-up order (tokens, fields)."""
    warm_up = FIRST_DEAL + 900
    deal_list = [us_deal(FIRST_DEAL + n, KNOWN_ORG, 1, _products(n)) for n in lines]
    deal_list.append(us_deal(warm_up, KNOWN_ORG, 1, _products(1)))
    pd_seed, d_seed = seeds(products=max(lines), deals=deal_list)
    async with bench_stack(azurite, pd_seed, d_seed) as bench:
        await _naive(bench, warm_up)
        return {n: await _naive(bench, FIRST_DEAL + n) for n in lines}


async def run(
    azurite: Azurite, *, deals: int = 40, workers: int = 8, latency: tuple[float, float] = (0.05, 0.15)
) -> str:
    from bench.throughput import _inject_latency

    rate_ids = {flow: [FIRST_DEAL + 1000 + i + (0 if flow == "ours" else deals) for i in range(deals)]
                for flow in ("ours", "naive")}  # fmt: skip
    deal_list = [us_deal(FIRST_DEAL, KNOWN_ORG, 1, _products(5))]  # warms ours: the account and items known
    deal_list += [us_deal(d, KNOWN_ORG, 1, _products(5)) for ids in rate_ids.values() for d in ids]
    pd_seed, d_seed = seeds(products=5, orgs=[bench_org(990, "Naive bench spare")], deals=deal_list)
    async with bench_stack(azurite, pd_seed, d_seed) as bench:
        await _ours(bench, FIRST_DEAL)
        bench.stack.pipedrive.set_limits(RateLimits())
        _inject_latency(bench, deals * 2 * 60, *latency)
        pd_mark, d_mark = len(bench.pipedrive_log()), len(bench.d365_log())
        ours_rate = await _rate(bench, rate_ids["ours"], workers, "ours")
        ours_calls = calls_since(bench, pd_mark, d_mark)
        pd_mark, d_mark = len(bench.pipedrive_log()), len(bench.d365_log())
        naive_rate = await _rate(bench, rate_ids["naive"], workers, "naive")
        naive_calls = calls_since(bench, pd_mark, d_mark)
    per = [(c.pipedrive_total / deals, c.d365_total / deals) for c in (ours_calls, naive_calls)]
    rows = [
        ("orders/min", f"{ours_rate:.0f}", f"{naive_rate:.0f}", f"{ours_rate / naive_rate:.1f}x"),
        ("Pipedrive calls per order", f"{per[0][0]:.1f}", f"{per[1][0]:.1f}", f"{per[1][0] / per[0][0]:.1f}x fewer"),
        ("D365 calls per order", f"{per[0][1]:.1f}", f"{per[1][1]:.1f}", f"{per[1][1] / per[0][1]:.1f}x fewer"),
    ]
    return table(
        f"5. Ours next to the naive flow (iPaaS-style recipe): {deals} won deals of 5 lines, {workers} at once",
        ["", "ours", "naive", "ours vs naive"],
        rows,
        [
            "Naive: deal, deal products, per line a product read and a D365 item lookup, the organization and a D365",
            "customer search by name every time, a header POST and one POST per line, the order-number write-back.",
            f"Default rate limits (growth plan, API token: 40 / 2 s), {latency[0] * 1000:.0f}-"
            f"{latency[1] * 1000:.0f} ms injected per request, the same clients (retry and pacing) for both flows;",
            "ours in the demo mapping's numbering mode. Calls per order by line count: table 1.",
        ],
    )
