"""One queue-worker process for the multi-process throughput run: `python bench/worker.py BATCH`.

It builds its runtime from the environment (the benchmark's stack settings, `PIPEDRIVE_INSTANCES`
included), drains the order queue like a Functions instance until the queue stays empty, and prints
its figures as one JSON line: outcomes and its own peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    """This program's peak RSS: VmHWM starts anew at exec (ru_maxrss would count the parent's pages the
    process had between fork and exec: the benchmark's simulators and data)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(batch_size: int) -> None:
    from connector.dev.localhost import QueuePump
    from connector.runtime import close_runtime, get_runtime

    rt = await get_runtime()
    pump = QueuePump(rt, batch_size=batch_size, retry_after=0)
    quiet = 0
    try:
        while quiet < 3:  # the queue read empty three times in a row: the run is over
            await pump.drain()
            quiet = quiet + 1 if await rt.queues.depth(rt.queues.order_queue) == 0 else 0
            await asyncio.sleep(0.2)  # like the host's polling interval between empty receives
    finally:
        await close_runtime()
    rss = _peak_rss_mb()
    print(json.dumps({"stats": asdict(pump.stats), "peak_rss_mb": round(rss, 1)}), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8))
