"""Benchmark 7: the master sync at catalogue scale (default 10,000 released products and 5,000 customers across
two legal entities): a first full sync (creates, some adoptions), then a resync with nothing changed.

Figures: D365 calls, Pipedrive calls and the tokens they cost next to the daily budget, Pipedrive writes
(0 on the resync), Table Storage calls per pushed record, wall time, and what the Pipedrive burst limit
alone makes of the calls (the wall time of a real tenant, where that limit binds). The run lifts the
simulator's burst limit so the figure is the connector's own cost; the daily budget is the growth
plan's (30,000 x 2 x 5 seats). Peak RSS is this process's (connector and simulators together) and its
growth over the sync; the diff streams D365 pages and never holds more than the Pipedrive directory.
"""

from __future__ import annotations

import math
import resource
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.harness import Bench, bench_stack
from bench.report import table
from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.demo_data import ACCOUNT_FIELD, d365_seed, pipedrive_seed
from connector.dev.sandbox.pipedrive.ratelimit import RateLimits
from connector.flows.master_diff import master_diff

ADOPT_SHARE = 10  # every tenth record already exists in Pipedrive (adopted, not created)
GROWTH = RateLimits()


def catalogue(products: int, customers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seeds: `products` released products split over usmf/demf with 30 % of item numbers in both
    companies, `customers` customers split evenly; a tenth of each already in Pipedrive."""
    pd_seed, d_seed = pipedrive_seed(), d365_seed()
    per_company = products // 2
    shared = per_company * 3 // 10
    first = {"usmf": 1, "demf": per_company - shared + 1}
    codes: set[str] = set()
    for company, start in first.items():
        for n in range(start, start + per_company):
            code = f"CX-{n:06d}"
            codes.add(code)
            price = round(5 + n * 0.37, 2)
            d_seed["released_products"].append(
                {"dataAreaId": company, "ItemNumber": code, "ProductName": f"Catalogue part {code}", "SearchName": code,
                 "SalesUnitSymbol": "ea", "InventoryUnitSymbol": "ea", "SalesPrice": price, "ItemModelGroupId": "STD"}
            )  # fmt: skip
    for i, code in enumerate(sorted(codes)):
        if i % ADOPT_SHARE == 0:
            pd_seed["products"].append({"name": f"Catalogue part {code}", "code": code, "unit": "ea"})
    for i in range(customers):
        company, country, prefix = ("usmf", "USA", "CU") if i % 2 == 0 else ("demf", "DEU", "CD")
        account = f"{prefix}-{i:06d}"
        d_seed["customers"].append(
            {"dataAreaId": company, "CustomerAccount": account, "OrganizationName": f"Customer {account}",
             "CustomerGroupId": "10", "SalesCurrencyCode": "USD" if company == "usmf" else "EUR",
             "AddressCountryRegionId": country, "AddressCity": "Springfield" if company == "usmf" else "Bonn"}
        )  # fmt: skip
        if i % ADOPT_SHARE == 0:
            pd_seed["organizations"].append(
                {"name": f"Customer {account}", "owner_id": 1, "custom_fields": {ACCOUNT_FIELD: account}}
            )
    return pd_seed, d_seed


class StorageCalls:
    """Counts the Azure SDK's HTTP requests to Azurite (tables and queues), by service and method."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @contextmanager
    def counting(self, table_port: int, queue_port: int) -> Iterator[None]:
        from azure.core.pipeline.transport import AioHttpTransport

        original = AioHttpTransport.send
        services = {table_port: "table", queue_port: "queue"}

        async def send(transport: Any, request: Any, **kwargs: Any) -> Any:
            port = int(request.url.split(":")[2].split("/")[0]) if request.url.count(":") >= 2 else 0
            self.counts[f"{services.get(port, 'other')} {request.method}"] += 1
            return await original(transport, request, **kwargs)

        AioHttpTransport.send = send  # type: ignore[method-assign]
        try:
            yield
        finally:
            AioHttpTransport.send = original  # type: ignore[method-assign]

    def total(self, service: str) -> int:
        return sum(n for key, n in self.counts.items() if key.startswith(service))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


async def _sync(bench: Bench, storage: StorageCalls, label: str) -> tuple[tuple[object, ...], dict[str, Any]]:
    pd_mark, d_mark = len(bench.pipedrive_log()), len(bench.d365_log())
    storage.counts.clear()
    rss_before = _rss_mb()
    started = time.perf_counter()
    result = await master_diff(await bench.rt.diff_deps(), "all", reason="cli", inline_seconds=math.inf)
    seconds = time.perf_counter() - started
    pd = bench.pipedrive_log()[pd_mark:]
    d365 = [r for r in bench.d365_log()[d_mark:] if r.path.startswith("/data") and not r.in_batch]
    writes = sum(1 for e in pd if e["method"] in ("POST", "PATCH", "PUT", "DELETE"))
    searches = sum(1 for e in pd if e["route"].endswith("/search"))
    tokens = sum(int(e.get("cost") or 0) for e in pd)
    pushed = sum(sum(o.values()) for o in result.pushed.values())
    at_bound = len(pd) / (GROWTH.burst("api_token", search=False) / GROWTH.window_seconds)
    per_record = f"{(storage.total('table') + storage.total('queue')) / pushed:.2f}" if pushed else "-"
    row = (label, f"{sum(result.seen.values()):,}", f"{pushed:,}", result.enqueued, len(d365), f"{len(pd):,}", searches,
           f"{writes:,}", f"{tokens:,} ({tokens / GROWTH.daily():.0%})", storage.total("table"), storage.total("queue"),
           per_record, f"{seconds:.0f}", f"{at_bound:.0f}", f"{_rss_mb():.0f} (+{_rss_mb() - rss_before:.0f})")  # fmt: skip
    detail = {
        "outcomes": {kind: dict(o) for kind, o in result.pushed.items()},
        "pipedrive": Counter(f"{e['method']} {e['route']}" for e in pd),
        "storage": dict(storage.counts),
    }
    return row, detail


async def run(azurite: Azurite, *, products: int = 10_000, customers: int = 5_000) -> str:
    pd_seed, d_seed = catalogue(products, customers)
    rows, notes = [], []
    storage = StorageCalls()
    async with bench_stack(azurite, pd_seed, d_seed) as bench:
        bench.stack.pipedrive.set_limits(RateLimits(burst_api_token=100_000, burst_search=100_000))
        table_port, queue_port = azurite.table_port, azurite.queue_port
        with storage.counting(table_port, queue_port):
            for label in ("first sync", "resync, nothing changed"):
                row, detail = await _sync(bench, storage, label)
                rows.append(row)
                notes.append(f"{label}: {detail['outcomes']}")
                notes.append(f"  Pipedrive: {dict(sorted(detail['pipedrive'].items()))}")
                notes.append(f"  Table/Queue Storage: {dict(sorted(detail['storage'].items()))}")
        store = bench.stack.pipedrive.sim.store
        codes = Counter(p["code"] for p in store.visible("product") if p.get("code"))
        accounts = Counter((o.get("custom_fields") or {}).get(ACCOUNT_FIELD) for o in store.visible("organization"))
        accounts.pop(None, None)
        doubled = sum(1 for n in codes.values() if n > 1) + sum(1 for n in accounts.values() if n > 1)
        notes.append(f"Pipedrive afterwards: {len(codes):,} products, {len(accounts):,} organizations with an account; "
                     f"records with a duplicate: {doubled}")  # fmt: skip
    return table(
        f"7. Master sync at catalogue scale: {products:,} released products, {customers:,} customers, 2 legal entities",
        [
            "run",
            "read",
            "pushed",
            "queued",
            "D365 calls",
            "PD calls",
            "PD searches",
            "PD writes",
            "PD tokens (of daily)",
            "table calls",
            "queue calls",
            "storage/pushed",
            "s",
            "s at PD bound",
            "peak RSS MB",
        ],
        rows,
        [
            f"Daily budget (growth plan, 5 seats): {GROWTH.daily():,} tokens. 's at PD bound' = Pipedrive calls / "
            f"{GROWTH.burst('api_token', search=False)} per {GROWTH.window_seconds:g} s: the wall time where that limit",
            "binds (this run lifts it, so 's' is the connector's own time). storage/pushed = Table + Queue Storage",
            "calls per pushed record (id-map scans and batches included). Peak RSS: this process, simulators included.",
            *notes,
        ],
    )
