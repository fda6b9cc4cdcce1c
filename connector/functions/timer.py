"""Timer trigger bodies: the poll of won deals (the backup for missed webhooks), the master diff and the
reconciler (stranded jobs get their message again)."""

from __future__ import annotations

from connector.flows.master_diff import DiffResult, master_diff
from connector.flows.poll import PollResult, poll_won_deals
from connector.flows.reconciler import ReconcileResult, reconcile_jobs
from connector.runtime import get_runtime


async def run_poll() -> PollResult:
    return await poll_won_deals(await (await get_runtime()).poll_deps())


async def run_master_diff() -> DiffResult:
    """Queue a push for every product and customer whose content changed since its last push."""
    return await master_diff(await (await get_runtime()).diff_deps(), "all", reason="timer")


async def run_reconcile() -> ReconcileResult:
    """Re-queue order and master jobs left queued/running without a live lease past the grace period."""
    return await reconcile_jobs(await (await get_runtime()).requeue_deps())
