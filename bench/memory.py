"""Benchmark 6: memory over a long run (goal: a worker's peak RSS <= 150 MB).

- One queue-worker process (`bench/worker.py`, 8 messages at once) builds 1,000 orders; it reports its own
  peak RSS (`ru_maxrss`).
- One local runner (`ml-connector serve`, the function app's HTTP routes) takes 10,000 Pipedrive webhook
  deliveries (deal changes in the v2 shape the simulator sends: most not won, some won again); its peak
  and current RSS are read from /proc after every 2,000, so growth shows.
The Pipedrive burst limit is lifted: the figure is memory, not time.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import BENCH_PRODUCT_BASE, Bench, bench_stack, seeds, us_deal
from bench.report import table
from bench.throughput import _workers
from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.pipedrive.ratelimit import RateLimits
from connector.dev.sandbox.pipedrive.store import Event
from connector.dev.sandbox.stack import WEBHOOK_USER
from connector.flows.poll import poll_won_deals

FIRST_DEAL = 40_000
PRODUCTS = 20


def _deals(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(11)
    ids = range(BENCH_PRODUCT_BASE + 1, BENCH_PRODUCT_BASE + PRODUCTS + 1)
    return [us_deal(FIRST_DEAL + i, 1, 1, rnd.sample(ids, rnd.randint(1, 5))) for i in range(n)]


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _orders(bench: Bench, n: int) -> tuple[float, float, int]:
    for i in range(n):
        bench.stack.pipedrive.set_deal_status(FIRST_DEAL + i, "won")
    polled = await poll_won_deals(await bench.rt.poll_deps())
    started = time.perf_counter()
    [result] = await _workers(1, 8, True)
    created = result["stats"]["outcomes"].get("created", 0)
    if polled.enqueued != n or created != n:
        raise RuntimeError(f"memory run: {polled.enqueued} queued, {result}")
    return result["peak_rss_mb"], time.perf_counter() - started, created


def _webhook(bench: Bench, deal_id: int, n: int) -> dict[str, Any]:
    store = bench.stack.pipedrive.sim.store
    deal = store.get("deal", deal_id)
    previous = {"status": "open"} if n % 5 == 0 else {"title": f"{deal['title']} (edit {n})"}
    data = {**deal, "status": "won" if n % 5 == 0 else "open"}
    event = Event("deal", "change", deal_id, data, previous, "app", 1)
    hook = {"id": 1, "owner_id": 1, "version": "2.0"}
    return bench.stack.pipedrive.sim.dispatcher.payload(hook, event, f"evt-{n}", 1)


async def _webhooks(bench: Bench, n: int, deals: int) -> list[tuple[int, float, float]]:
    port = _free_port()
    exe = str(Path(sys.executable).with_name("ml-connector"))
    args = [
        "serve",
        "--port",
        str(port),
        "--poll-every",
        "0",
        "--master-every",
        "0",
        "--admin-key",
        "bench-admin-key-for-the-memory-run",
    ]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-serve.log", "wb")  # noqa: SIM115, ASYNC230 - once, at start
    proc = await asyncio.create_subprocess_exec(exe, *args, env=dict(os.environ), stdout=log, stderr=log)
    secret = f"{WEBHOOK_USER}:{bench.stack.webhook_password}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(secret).decode()}
    samples: list[tuple[int, float, float]] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            for _ in range(300):  # the runner starts: poll its health, bounded (about 30 s)
                try:
                    if (await client.get("/api/health")).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            gate = asyncio.Semaphore(32)

            async def one(i: int) -> None:
                async with gate:
                    answer = await client.post(
                        "/api/pipedrive/webhook", json=_webhook(bench, FIRST_DEAL + i % deals, i)
                    )
                    if answer.status_code >= 300:
                        raise RuntimeError(f"webhook {i}: {answer.status_code} {answer.text[:200]}")

            for start in range(0, n, 2000):
                await asyncio.gather(*(one(i) for i in range(start, min(n, start + 2000))))
                samples.append((min(n, start + 2000), _status_kb(proc.pid, "VmHWM") / 1024,
                                _status_kb(proc.pid, "VmRSS") / 1024))  # fmt: skip
        if proc.returncode is not None:
            raise RuntimeError(f"ml-connector serve exited {proc.returncode}; see {log.name}")
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        log.close()
    return samples


async def run(azurite: Azurite, *, orders: int = 1000, webhooks: int = 10_000) -> str:
    pd_seed, d_seed = seeds(products=PRODUCTS, deals=_deals(orders))
    async with bench_stack(azurite, pd_seed, d_seed) as bench:
        bench.stack.pipedrive.set_limits(RateLimits(burst_api_token=100_000))
        worker_peak, seconds, created = await _orders(bench, orders)
        samples = await _webhooks(bench, webhooks, orders)
    rows: list[tuple[object, ...]] = [(f"queue worker, {created:,} orders built", f"{worker_peak:.0f}", "-",
                                       f"{seconds:.0f} s")]  # fmt: skip
    rows += [
        (f"local runner, after {count:,} webhooks", f"{peak:.0f}", f"{now:.0f}", "-") for count, peak, now in samples
    ]
    return table(
        "6. Memory over a long run (goal: peak RSS <= 150 MB per worker)",
        ["process", "peak RSS MB", "RSS now MB", "time"],
        rows,
        [
            "Worker: bench/worker.py, 8 messages at once, Pipedrive limit lifted. Runner: `ml-connector serve`,",
            "webhooks 32 at once (4 of 5 not won: acknowledged; 1 of 5 won again: de-duplicated by the job row).",
        ],
    )
