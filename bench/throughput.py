"""Benchmark 2: orders per minute against the simulators' default rate limits with injected latency,
next to the bound those limits allow, and a lost-work check (orders created == deals won).

Neither simulator has a global latency knob, so every request gets its own one-shot latency fault
(seeded uniform draw between the given bounds): Pipedrive `inject_fault("*", latency=x)`, D365
`inject_fault(latency=x)` (OData and $batch; the token endpoint is not delayed).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import BENCH_PRODUCT_BASE, Bench, bench_org, bench_stack, calls_since, drain_all, seeds, us_deal
from bench.report import table
from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.pipedrive.ratelimit import RateLimits
from connector.flows.poll import poll_won_deals

FIRST_DEAL, FIRST_ORG, ORGS, PRODUCTS = 20_000, 950, 10, 20
# Real F&O service protection per user (d365-fo-odata.md section 6); the simulator's default is off.
D365_LIMIT = {"max_requests": 6000, "window_seconds": 300.0}


@dataclass
class Row:
    concurrency: int
    deals: int
    orders: int
    duplicates: int
    failed_jobs: int
    poisoned: int
    seconds: float
    pd_calls: int
    pd_429: int
    d365_calls: int
    d365_429: int
    customers_created: int
    active_seconds: float = 0.0  # first to last Pipedrive request of the run
    worker_rss: list[float] = field(default_factory=list)

    @property
    def per_minute(self) -> float:
        return self.orders / self.seconds * 60 if self.seconds else 0.0


def _deals(n: int) -> list[dict[str, object]]:
    rnd = random.Random(7)
    deals = []
    for i in range(n):
        lines = rnd.randint(1, 5)
        products = rnd.sample(range(BENCH_PRODUCT_BASE + 1, BENCH_PRODUCT_BASE + PRODUCTS + 1), lines)
        deals.append(us_deal(FIRST_DEAL + i, FIRST_ORG + i % ORGS, FIRST_ORG + i % ORGS, products))
    return deals


def _inject_latency(bench: Bench, n: int, low: float, high: float) -> None:
    rnd = random.Random(42)
    for _ in range(n):
        bench.stack.pipedrive.inject_fault("*", None, latency=rnd.uniform(low, high))
        bench.stack.d365.inject_fault(latency=rnd.uniform(low, high))


async def _one(
    azurite: Azurite, deals: int, concurrency: int, latency: tuple[float, float], limits: RateLimits,
    *, processes: int = 0, share: bool = True,
) -> Row:  # fmt: skip
    """One run: in this process (`processes=0`), or in that many worker processes sharing one token."""
    orgs = [bench_org(FIRST_ORG + i, f"Throughput Customer {i:02d} LLC") for i in range(ORGS)]
    pd_seed, d_seed = seeds(products=PRODUCTS, orgs=orgs, deals=_deals(deals))
    async with bench_stack(azurite, pd_seed, d_seed) as bench:
        bench.stack.pipedrive.set_limits(limits)
        bench.stack.d365.set_limits(**D365_LIMIT)
        deal_ids = [FIRST_DEAL + i for i in range(deals)]
        for deal_id in deal_ids:
            bench.stack.pipedrive.set_deal_status(deal_id, "won")
        _inject_latency(bench, deals * 40, *latency)
        customers_before = len(bench.stack.d365.records("CustomersV3"))
        pd_mark, d_mark = len(bench.pipedrive_log()), len(bench.d365_log())
        polled = await poll_won_deals(await bench.rt.poll_deps())  # the timer's safety net enqueues them all at once
        pd_mark = len(bench.pipedrive_log())  # the poll's own call is not the orders'
        started = time.perf_counter()  # the queue is full: from here on, orders per minute
        poisoned, rss = 0, []
        if processes:
            for stats in await _workers(processes, concurrency, share):
                poisoned += stats["stats"]["poisoned"]
                rss.append(stats["peak_rss_mb"])
        else:
            poisoned = (await drain_all(bench.rt, batch_size=concurrency)).poisoned
        seconds = time.perf_counter() - started
        if polled.enqueued != deals:
            raise RuntimeError(f"poll enqueued {polled.enqueued} of {deals} won deals")
        calls = calls_since(bench, pd_mark, d_mark)
        entries = bench.pipedrive_log()[pd_mark:]
        active = entries[-1]["time"] - entries[0]["time"] if len(entries) > 1 else seconds
        pd_429 = sum(1 for e in bench.pipedrive_log()[pd_mark:] if e.get("status") == 429)
        d365_429 = sum(1 for r in bench.d365_log()[d_mark:] if r.status == 429 and not r.in_batch)
        wanted = {f"PD-{deal_id}" for deal_id in deal_ids}
        refs = [o.get("CustomersOrderReference") for o in bench.stack.d365.sales_orders()]
        mine = [r for r in refs if r in wanted]
        failed = 0
        for deal_id in deal_ids:
            job = await bench.rt.state.jobs.get("order", str(deal_id))
            failed += job is None or job.state != "done"
        return Row(
            concurrency=concurrency,
            deals=deals,
            orders=len(set(mine)),
            duplicates=len(mine) - len(set(mine)),
            failed_jobs=failed,
            poisoned=poisoned,
            seconds=seconds,
            pd_calls=calls.pipedrive_total,
            pd_429=pd_429,
            d365_calls=calls.d365_total,
            d365_429=d365_429,
            customers_created=len(bench.stack.d365.records("CustomersV3")) - customers_before,
            active_seconds=active,
            worker_rss=rss,
        )


async def _workers(processes: int, batch: int, share: bool) -> list[dict[str, Any]]:
    """Start `processes` queue workers on this stack's settings; each tells its figures when the queue is empty."""
    env = {**os.environ, "PIPEDRIVE_INSTANCES": str(processes if share else 1)}
    script = str(Path(__file__).with_name("worker.py"))
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, script, str(batch), env=env, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(processes)
    ]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    results = []
    for proc, (out, _) in zip(procs, outputs, strict=True):
        lines = out.decode().strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"worker process exited {proc.returncode}: {out.decode()[-500:]}")
        results.append(json.loads(lines[-1]))
    return results


HEADERS = ["processes x workers", "won / created", "dup", "failed", "s", "orders/min", "PD bound/min", "of bound",
           "PD rate, active", "latency bound/min", "PD calls/order (429s)", "D365 calls/order (429s)", "customers made",
           "worker RSS MB"]  # fmt: skip


async def run(
    azurite: Azurite,
    *,
    deals: int = 100,
    latency: tuple[float, float] = (0.05, 0.15),
    concurrency: tuple[int, ...] = (8, 16),
    processes: int = 4,
) -> str:
    limits = RateLimits()
    burst = limits.burst("api_token", search=False)
    rate = burst / limits.window_seconds
    rows, notes = [], []
    # label, workers per process, limits, processes (0: in this process), share the token's limit
    runs: list[tuple[str, int, RateLimits, int, bool]] = [(f"1 x {c}", c, limits, 0, True) for c in concurrency]
    if processes > 1:
        c = concurrency[0]
        runs.append((f"{processes} x {c}, sharing", c, limits, processes, True))
        runs.append((f"{processes} x {c}, unaware", c, limits, processes, False))
    # The last run lifts the Pipedrive limit: what the connector does when the limit is not the bound.
    runs.append((f"1 x {concurrency[0]}, PD unlimited", concurrency[0], RateLimits(burst_api_token=100_000), 0, True))
    for label, c, run_limits, procs, share in runs:
        r = await _one(azurite, deals, c, latency, run_limits, processes=procs, share=share)
        accepted = r.pd_calls - r.pd_429
        accepted_pd = accepted / max(r.orders, 1)
        bound = rate * 60 / accepted_pd
        mean_latency = sum(latency) / 2
        per_order = (accepted + r.d365_calls - r.d365_429) / max(r.orders, 1)
        latency_bound = f"{c * max(procs, 1) * 60 / (per_order * mean_latency):.0f}" if mean_latency else "-"
        limited = run_limits is limits
        steady = accepted / r.active_seconds / rate if r.active_seconds and limited else None
        rows.append(
            (label, f"{r.deals} / {r.orders}", r.duplicates, r.failed_jobs + r.poisoned, f"{r.seconds:.1f}",
             f"{r.per_minute:.0f}", f"{bound:.0f}" if limited else "-", f"{r.per_minute / bound:.0%}" if limited else "-",
             f"{steady:.0%}" if steady is not None else "-", latency_bound,
             f"{accepted_pd:.2f} ({r.pd_429})", f"{(r.d365_calls - r.d365_429) / max(r.orders, 1):.2f} ({r.d365_429})",
             r.customers_created, "/".join(f"{m:.0f}" for m in r.worker_rss) or "-")
        )  # fmt: skip
        if r.customers_created > ORGS:
            notes.append(
                f"FINDING ({label}): {r.customers_created} D365 customers made for {ORGS} new organizations: "
                "concurrent first orders of one organization each created a customer."
            )
        if r.orders != r.deals or r.duplicates or r.failed_jobs or r.poisoned:
            notes.append(f"LOST OR DOUBLE WORK in run {label}: {r}")
    return table(
        f"2. Throughput: {deals} won deals, default rate limits, {latency[0] * 1000:.0f}-{latency[1] * 1000:.0f} ms "
        "injected per request",
        HEADERS,
        rows,
        [
            f"PD bound = Pipedrive burst {burst} per {limits.window_seconds:g} s (growth plan, API token) x 60 / accepted",
            "Pipedrive calls per order (429 answers are not counted by the limiter). 'of bound' is from a full queue (the",
            "poll has queued every deal) to an empty one, worker process start included; 'PD rate, active' = accepted",
            f"Pipedrive requests per second from the first order call to the last, as a share of {rate:g}/s.",
            "Latency bound = workers x 60 / (calls per order x mean injected latency), ignoring storage. D365 at",
            "6000 req / 300 s never binds here. The simulators, Azurite and the connector share this machine's cores.",
            f"'sharing': every process runs with PIPEDRIVE_INSTANCES={processes} (each paces itself to its share of the",
            "token's limit); 'unaware': the same processes with the default 1 (each believes it has the whole limit).",
            f"The first order of each of the {ORGS} new organizations also creates its D365 customer (and writes it back).",
            "workers = queue messages processed concurrently per process (host.json batchSize is 8).",
            *notes,
        ],
    )
