"""4. Bulk routes over the local runner's real HTTP (target under 2 s each):
a replay of 1,000 new deal ids, a replay of 1,000 failed jobs, and one D365 delivery of 200 events."""

from __future__ import annotations

import time

import httpx

from bench.harness import bench_stack, seeds
from connector.dev.localhost import LocalHost
from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.d365.events import envelope

DEALS = 1000
EVENTS = 200
FIRST_DEAL = 1_000_001


async def _timed(client: httpx.AsyncClient, url: str, key: str, body: object) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await client.post(url, json=body, headers={"x-functions-key": key}, timeout=120)
    return time.perf_counter() - started, response


async def run(azurite: Azurite, *, deals: int = DEALS, events: int = EVENTS) -> str:
    pd_seed, d_seed = seeds()
    async with bench_stack(azurite, pd_seed, d_seed) as bench:
        rt = bench.rt
        host = LocalHost(rt)
        await host.start(workers=False)
        rows: list[tuple[str, float, str]] = []
        try:
            async with httpx.AsyncClient() as client:
                ids = list(range(FIRST_DEAL, FIRST_DEAL + deals))
                replay = f"{host.base_url}/api/admin/replay"
                seconds, answer = await _timed(client, replay, host.admin_key, {"deal_ids": ids})
                rows.append(
                    (
                        f"replay {deals} new deal ids",
                        seconds,
                        f"{answer.status_code}, {len(answer.json()['requeued'])} queued",
                    )
                )

                for job in await rt.state.jobs.list("order"):  # setup, not timed: every job failed
                    claimed = await rt.state.jobs.claim("order", job.key, worker="bench", lease_seconds=60)
                    if claimed is not None:
                        await rt.state.jobs.fail(claimed, "bench")
                seconds, answer = await _timed(client, replay, host.admin_key, {"failed": True})
                rows.append(
                    (
                        f"replay {deals} failed jobs",
                        seconds,
                        f"{answer.status_code}, {len(answer.json()['requeued'])} queued",
                    )
                )

                seconds, answer = await _timed(client, replay, host.admin_key, {"deal_ids": ids})
                rows.append(
                    (
                        f"replay {deals} queued deals (all skipped)",
                        seconds,
                        f"{answer.status_code}, {len(answer.json()['skipped'])} skipped",
                    )
                )

                delivery = [
                    envelope(
                        "ReleasedProductChangedBusinessEvent", "usmf", 5637144577 + n, {"ItemNumber": f"BULK-{n:04d}"}
                    )
                    for n in range(events)
                ]
                url = f"{host.base_url}/api/d365/events"
                seconds, answer = await _timed(client, url, host.admin_key, delivery)
                queued = sum(1 for e in answer.json()["events"] if e["status"] == "queued")
                rows.append((f"{events} events in one delivery", seconds, f"{answer.status_code}, {queued} queued"))
        finally:
            await host.stop()
    width = max(len(name) for name, _, _ in rows)
    lines = ["4. Bulk routes over HTTP (embedded stack; target < 2 s each)", f"{'route':<{width}}  seconds  answer"]
    lines += [f"{name:<{width}}  {seconds:7.2f}  {detail}" for name, seconds, detail in rows]
    return "\n".join(lines)
