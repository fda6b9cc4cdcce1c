"""Timer trigger body: one poll of won deals (the backup for missed webhooks)."""

from __future__ import annotations

from connector.flows.poll import PollResult, poll_won_deals
from connector.runtime import get_runtime


async def run_poll() -> PollResult:
    return await poll_won_deals(await get_runtime())
