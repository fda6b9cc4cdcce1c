"""The local runner as `ml-connector serve` runs it: webhook over HTTP, the queue pump loop and the
same function bodies, with no test driving the queue (we wait on the flow's own `recorded` step)."""

from __future__ import annotations

import asyncio

from connector.dev.localhost import LocalHost
from connector.dev.sandbox.stack import WEBHOOK_USER
from tests.fixtures.stack import E2E


async def test_local_runner_turns_a_won_deal_into_one_order_by_itself(e2e: E2E) -> None:
    recorded = asyncio.Event()

    async def on_step(step: str) -> None:
        if step == "recorded":
            recorded.set()

    host = LocalHost(e2e.rt, pump_idle=0.05)
    host.pump.checkpoint = on_step
    async with host:
        pipedrive = await e2e.rt.pipedrive()
        url = f"{host.base_url}/api/pipedrive/webhook"
        await pipedrive.ensure_webhook(url, WEBHOOK_USER, e2e.stack.webhook_password, "change", "deal", "2.0")
        e2e.stack.pipedrive.set_deal_status(110, "won")
        await asyncio.wait_for(recorded.wait(), 15)
    orders = e2e.orders("PD-110")
    assert len(orders) == 1 and len(orders[0]["SalesOrderLines"]) == 1
    job = await e2e.job(110)
    assert job is not None and job.state == "done"
    # Stopping right after the build lets the batch finish: the message is acked, nothing is left over.
    assert host.pump.stats.outcomes == {"created": 1}
    assert await e2e.queue_depth() == 0
