"""What every claimed job (order build, master push) does when it cannot run or must give up for now."""

from __future__ import annotations

import contextlib

from connector.flows.context import FlowContext
from connector.state.jobs import Job, JobStore, LostLeaseError
from connector.state.tables import now


def lease_left(job: Job) -> float:
    """Seconds until another worker's lease on `job` runs out (at least 1): when to come back."""
    if job.lease_until is None:
        return 1.0
    return max(1.0, (job.lease_until - now()).total_seconds())


async def release(jobs: JobStore, ctx: FlowContext, job: Job, exc: BaseException, event: str) -> None:
    """Give the job back after a transient (or unknown) error so the message's retry can claim it."""
    text = f"{type(exc).__name__}: {exc}"
    with contextlib.suppress(LostLeaseError):  # someone took it over meanwhile: theirs now
        await jobs.release(job, text)
    await ctx.audit(event, level="warning", error=text)
