"""Replays: re-queue one deal, every failed order job, or the poison queue.

All of them go through the same job guard and claim as the first run, so a replay can re-open a
failed job but can never make a second order for a deal that has one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from connector.flows.orders import JOB_KIND
from connector.runtime import Runtime


@dataclass
class ReplayResult:
    requeued: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    poison_requeued: int = 0


def _correlation(prefix: str = "replay") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def replay_deals(rt: Runtime, deal_ids: list[int], *, correlation_id: str | None = None) -> ReplayResult:
    result = ReplayResult()
    cid = correlation_id or _correlation()
    for deal_id in deal_ids:
        if await rt.queues.enqueue_order(deal_id, reason="replay", correlation_id=cid):
            result.requeued.append(deal_id)
        else:
            job = await rt.state.jobs.get(JOB_KIND, str(deal_id))
            result.skipped[deal_id] = job.state if job else "unknown"
    return result


async def replay_failed(rt: Runtime, *, correlation_id: str | None = None) -> ReplayResult:
    failed = await rt.state.jobs.list(JOB_KIND, "failed")
    return await replay_deals(rt, [int(job.key) for job in failed], correlation_id=correlation_id)


async def replay_poison(rt: Runtime) -> ReplayResult:
    """Move poison messages back to the order queue; the claim still dedupes each of them."""
    return ReplayResult(poison_requeued=await rt.queues.requeue_poison(rt.queues.order_queue))
