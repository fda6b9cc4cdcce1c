"""A worker process that is killed (SIGKILL, no clean-up at all) when a deal's build reaches a step.

`python -m tests.e2e.kill_worker STEP DEAL_ID` with the stack's settings in the environment: receives one
batch of the order queue like the host does (messages invisible for 300 s) and dies at STEP of DEAL_ID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from connector.dev.localhost import QueuePump
from connector.flows.context import step_subject
from connector.runtime import close_runtime, get_runtime


async def main(step: str, deal_id: int) -> None:
    async def die(name: str) -> None:
        if name == step and step_subject.get() == f"deal-{deal_id}":
            os.kill(os.getpid(), signal.SIGKILL)

    rt = await get_runtime()
    await QueuePump(rt, visibility_timeout=300, checkpoint=die).run_once()
    await close_runtime()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
