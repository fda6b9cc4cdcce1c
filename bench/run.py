"""`make bench`: every benchmark, one shared Azurite, figures printed as tables (never asserted)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/run.py` puts bench/ first, not the repo


async def _api_benchmarks(args: argparse.Namespace) -> list[str]:
    from bench import calls, masters, throughput
    from connector.dev.sandbox.azurite import Azurite

    azurite = Azurite()
    await asyncio.to_thread(azurite.start)
    try:
        out = []
        if "calls" in args.only:
            out.append(await calls.run(azurite))
            print(out[-1], flush=True)
        if "bulk" in args.only:
            from bench import bulk

            out.append(await bulk.run(azurite))
            print(out[-1], flush=True)
        if "throughput" in args.only:
            out.append(
                await throughput.run(
                    azurite,
                    deals=args.deals,
                    latency=(args.latency_min, args.latency_max),
                    concurrency=tuple(args.workers),
                    processes=args.processes,
                )
            )
            print(out[-1], flush=True)
        if "naive" in args.only:
            from bench import naive

            out.append(await naive.run(azurite))
            print(out[-1], flush=True)
        if "memory" in args.only:
            from bench import memory

            out.append(await memory.run(azurite, orders=args.orders, webhooks=args.webhooks))
            print(out[-1], flush=True)
        if "masters" in args.only:
            out.append(await masters.run(azurite, products=args.products, customers=args.customers))
            print(out[-1], flush=True)
        return out
    finally:
        await asyncio.to_thread(azurite.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="+", default=["calls", "naive", "bulk", "throughput", "memory", "masters", "cold_start"],
                        choices=["calls", "naive", "bulk", "throughput", "memory", "masters", "cold_start"])  # fmt: skip
    parser.add_argument("--orders", type=int, default=1000, help="orders one worker builds in the memory run")
    parser.add_argument("--webhooks", type=int, default=10_000, help="webhooks the local runner takes")
    parser.add_argument("--products", type=int, default=10_000, help="released products in the master sync")
    parser.add_argument("--customers", type=int, default=5_000, help="customers in the master sync")
    parser.add_argument("--deals", type=int, default=100, help="won deals in the throughput run")
    parser.add_argument("--latency-min", type=float, default=0.05, help="injected latency per request, seconds")
    parser.add_argument("--latency-max", type=float, default=0.15)
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 16], help="concurrent queue messages")
    parser.add_argument("--processes", type=int, default=4, help="worker processes sharing one token (0/1: skip)")
    parser.add_argument("--repeat", type=int, default=5, help="cold-start subprocesses per variant")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # retries and 429s are part of the run, not news
    started = time.perf_counter()
    if {"calls", "naive", "bulk", "throughput", "memory", "masters"} & set(args.only):
        asyncio.run(_api_benchmarks(args))
    if "cold_start" in args.only:
        from bench import cold_start

        print(cold_start.run(repeat=args.repeat), flush=True)
    print(f"\nbench finished in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
