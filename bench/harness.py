"""What every benchmark needs: the demo stack with extra seed data, the connector's runtime on it,
and request counts read from the simulators' own logs (the connector is not instrumented)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.dev.localhost import PumpStats, QueuePump
from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.demo_data import PRODUCTS, d365_seed, pipedrive_seed
from connector.dev.sandbox.stack import DEMO_MAPPING, LocalStack
from connector.host_json import host_json
from connector.runtime import Runtime, close_runtime, get_runtime

BENCH_PRODUCT_BASE = 1000  # Pipedrive ids of the extra products: 1001..1000+n
PUMP_BATCH = host_json().queues.batch_size  # what the host runs at once per instance


def bench_products(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`n` extra items as (Pipedrive products, D365 released products in usmf), codes BX-0001..."""
    pipedrive, d365 = [], []
    for i in range(1, n + 1):
        code, price = f"BX-{i:04d}", round(10 + i * 1.25, 2)
        pipedrive.append(
            {
                "id": BENCH_PRODUCT_BASE + i,
                "name": f"Bench part {code}",
                "code": code,
                "unit": "ea",
                "category": "Bench",
                "prices": [{"price": price, "currency": "USD"}],
            }
        )
        d365.append(
            {
                "dataAreaId": "usmf",
                "ItemNumber": code,
                "ProductName": f"Bench part {code}",
                "SearchName": code,
                "SalesUnitSymbol": "ea",
                "InventoryUnitSymbol": "ea",
                "SalesPrice": price,
                "ItemModelGroupId": "STD",
            }
        )
    return pipedrive, d365


def us_deal(deal_id: int, org_id: int, person_id: int, product_ids: list[int]) -> dict[str, Any]:
    """An open deal in the US pipeline (-> usmf, USD), one line per product id."""
    lines = []
    for n, pid in enumerate(product_ids, start=1):
        price = PRODUCTS[pid - 1][3] if pid <= len(PRODUCTS) else round(10 + (pid - BENCH_PRODUCT_BASE) * 1.25, 2)
        lines.append({"product_id": pid, "item_price": price, "quantity": n % 7 + 1})
    return {
        "id": deal_id,
        "title": f"Bench deal {deal_id}",
        "org_id": org_id,
        "person_id": person_id,
        "pipeline_id": 1,
        "stage_id": 2,
        "owner_id": 1,
        "currency": "USD",
        "status": "open",
        "products": lines,
    }


def bench_org(org_id: int, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A US organization unknown to D365 (created on its first order) and its contact person."""
    org = {
        "id": org_id,
        "name": name,
        "owner_id": 1,
        "address": {"value": "Austin, United States", "country": "United States", "locality": "Austin"},
    }
    person = {
        "id": org_id,
        "name": f"Buyer {org_id}",
        "org_id": org_id,
        "emails": [{"value": f"buyer{org_id}@bench.example", "primary": True, "label": "work"}],
    }
    return org, person


def seeds(
    *, products: int = 0, orgs: list[tuple[dict[str, Any], dict[str, Any]]] = (), deals: list[dict[str, Any]] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo data set plus benchmark records, for both simulators."""
    pd_seed, d_seed = pipedrive_seed(), d365_seed()
    pd_products, d_products = bench_products(products)
    pd_seed["products"] += pd_products
    d_seed["released_products"] += d_products
    pd_seed["organizations"] += [org for org, _ in orgs]
    pd_seed["persons"] += [person for _, person in orgs]
    pd_seed["deals"] += list(deals)
    return pd_seed, d_seed


def numbering_mapping(numbering: str, folder: Path) -> Path:
    """The demo mapping with `order.numbering` set (`from_deal` numbers PD{deal_id}; `d365_sequence` none)."""
    if numbering == "demo mapping":
        return DEMO_MAPPING
    data = yaml.safe_load(DEMO_MAPPING.read_text(encoding="utf-8"))
    order = data["order"]
    order["numbering"] = numbering
    if numbering == "from_deal":
        order["number_template"] = "PD{deal_id}"
    else:
        order.pop("number_template", None)
    path = folder / f"mapping-{numbering}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class Bench:
    stack: LocalStack
    rt: Runtime

    def pipedrive_log(self) -> list[dict[str, Any]]:
        return self.stack.pipedrive.requests()

    def d365_log(self) -> list[Any]:
        return self.stack.d365.requests()

    async def win_and_build(self, *deal_ids: int) -> PumpStats:
        """Mark deals won, queue them as the webhook would, and drain the order queue."""
        for deal_id in deal_ids:
            self.stack.pipedrive.set_deal_status(deal_id, "won")
            await self.rt.queues.enqueue_order(
                deal_id, reason="webhook", correlation_id=f"bench-{uuid.uuid4().hex[:8]}"
            )
        return await drain_all(self.rt)


async def drain_all(rt: Runtime, *, batch_size: int = PUMP_BATCH) -> PumpStats:
    """Drain until the queue is empty (a failed attempt comes back at once: retry_after=0)."""
    pump = QueuePump(rt, batch_size=batch_size, retry_after=0)
    while True:
        await pump.drain()
        if await rt.queues.depth(rt.queues.order_queue) == 0:
            return pump.stats
        # Messages parked with a visibility delay (busy deal, long Retry-After): poll like the host does.
        await asyncio.sleep(0.2)


@asynccontextmanager
async def bench_stack(
    azurite: Azurite, pd_seed: dict[str, Any], d_seed: dict[str, Any], *, mapping_file: Path | None = None
) -> AsyncIterator[Bench]:
    mapping = mapping_file or DEMO_MAPPING
    async with LocalStack(pipedrive_seed=pd_seed, d365_seed=d_seed, azurite=azurite, mapping_file=mapping) as stack:
        stack.apply_env()
        rt = await get_runtime()
        try:
            yield Bench(stack, rt)
        finally:
            await close_runtime()


@dataclass
class Calls:
    """HTTP requests one step made, split the way the performance budget is written."""

    pipedrive: Counter[str] = field(default_factory=Counter)
    d365: Counter[str] = field(default_factory=Counter)
    pipedrive_token: int = 0
    d365_token: int = 0
    d365_batch_ops: int = 0

    @property
    def pipedrive_total(self) -> int:
        return sum(self.pipedrive.values())

    @property
    def d365_total(self) -> int:
        return sum(self.d365.values())


def calls_since(bench: Bench, pd_mark: int, d_mark: int) -> Calls:
    """Classify the requests logged after the marks (`len(log)` taken before the step)."""
    calls = Calls()
    for entry in bench.pipedrive_log()[pd_mark:]:
        if entry["path"].startswith("/oauth/"):
            calls.pipedrive_token += 1
        else:
            calls.pipedrive[f"{entry['method']} {entry['route']}"] += 1
    for req in bench.d365_log()[d_mark:]:
        if req.in_batch:
            calls.d365_batch_ops += 1
        elif not req.path.startswith("/data"):
            calls.d365_token += 1
        else:
            calls.d365[f"{req.method} {d365_route(req.path)}"] += 1
    return calls


def d365_route(path: str) -> str:
    """`/data/SalesOrderHeadersV2(...)` -> `/data/SalesOrderHeadersV2`; `$batch` stays as is."""
    return path.split("(", 1)[0]
