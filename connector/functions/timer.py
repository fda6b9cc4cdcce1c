"""Timer trigger bodies: one poll of won deals (the backup for missed webhooks) and the master diff."""

from __future__ import annotations

from connector.flows.master_diff import DiffResult, master_diff
from connector.flows.poll import PollResult, poll_won_deals
from connector.runtime import get_runtime


async def run_poll() -> PollResult:
    return await poll_won_deals(await get_runtime())


async def run_master_diff() -> DiffResult:
    """Queue a push for every product and customer whose content changed since its last push."""
    return await master_diff(await get_runtime(), "all", reason="timer")
