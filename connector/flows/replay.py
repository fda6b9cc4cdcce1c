"""Replays: re-queue deals, every failed order job, or the poison queues (orders and master pushes).

All of them go through the same job rules as the first run, so a replay can re-open a failed job but can
never make a second order for a deal that has one. A request is validated whole before anything is queued
(`parse_deal_ids`); the rows are then decided in batches (`guard_enqueue_many`) and the messages sent
concurrently, so a replay of 1,000 deals takes about a second, not a minute.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from connector.errors import TransientError
from connector.flows.deps import RequeueDeps
from connector.inputs import BadInput, parse_id
from connector.queues import OrderBuild
from connector.state.bulk import guard_enqueue_many
from connector.state.jobs import ORDER_JOB, EnqueueDecision

MAX_DEALS = 1000  # per request; `failed: true` replays any number
SEND_CONCURRENCY = 64
SUBJECT = "replay"  # one audit row per replay request, naming every deal it queued or skipped
# Up to this many deals, each deal's own trail also gets its `enqueue.queued` row (as a single enqueue
# writes); a bulk replay writes only the request's row, which names them all, and each deal's trail
# carries on from its build under the replay's correlation id. A row per deal would double its cost.
PER_DEAL_AUDIT = 50


@dataclass
class ReplayResult:
    requeued: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    poison_requeued: int = 0


def _correlation(prefix: str = "replay") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def parse_deal_ids(value: Any, where: str = "deal_ids") -> list[int]:
    """Every id valid (JSON integers 1..2^63-1) or BadInput naming each bad one; duplicates collapse."""
    if not isinstance(value, list):
        raise BadInput(f"{where}: expected a list of deal ids", lines=[f"{where}: not a list"])
    if len(value) > MAX_DEALS:
        raise BadInput(f"{where}: at most {MAX_DEALS} ids per request, got {len(value)}")
    ids, problems = [], []
    for index, item in enumerate(value):
        try:
            ids.append(parse_id(item, f"{where}[{index}]", strings=False))
        except BadInput as exc:
            problems.extend(exc.lines)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BadInput(f"bad deal ids, nothing was queued: {shown}", lines=problems[:50])
    return list(dict.fromkeys(ids))


async def replay_deals(deps: RequeueDeps, deal_ids: list[int], *, correlation_id: str | None = None) -> ReplayResult:
    """Queue an order build for each deal whose job allows it (new or failed); report the others' states."""
    result = ReplayResult()
    ids = list(dict.fromkeys(deal_ids))
    if not ids:
        return result
    cid = correlation_id or _correlation()
    decisions = await guard_enqueue_many(
        deps.state.jobs,
        ORDER_JOB,
        [str(deal_id) for deal_id in ids],
        correlation_id=cid,
        reason="replay",
        stale_after=deps.stale_after,
    )
    limit = asyncio.Semaphore(SEND_CONCURRENCY)
    unsent: list[int] = []
    per_deal = len(ids) <= PER_DEAL_AUDIT

    async def send(deal_id: int, decision: EnqueueDecision) -> None:
        async with limit:
            try:
                await deps.queues.send(OrderBuild(deal_id=deal_id, reason="replay", correlation_id=cid))
            except TransientError:
                await deps.state.jobs.undo_enqueue(decision)  # so the next replay is not skipped
                unsent.append(deal_id)
                return
            if per_deal:
                await deps.state.audit.append(
                    f"deal-{deal_id}",
                    "enqueue.queued",
                    correlation_id=cid,
                    detail={"previous": decision.previous, "reason": "replay"},
                )

    sends = []
    for deal_id in ids:
        decision = decisions[str(deal_id)]
        if decision.enqueue:
            sends.append(send(deal_id, decision))
            result.requeued.append(deal_id)
        else:
            result.skipped[deal_id] = decision.previous or "unknown"
    await asyncio.gather(*sends)
    if unsent:
        lost = set(unsent)
        result.requeued = [d for d in result.requeued if d not in lost]
    await deps.state.audit.append(
        SUBJECT,
        "replay.queued",
        correlation_id=cid,
        detail={"requeued": result.requeued, "skipped": {str(k): v for k, v in result.skipped.items()}},
    )
    if unsent:
        raise TransientError(f"{len(unsent)} of {len(ids)} deals could not be queued (queue storage); replay again")
    return result


async def replay_failed(deps: RequeueDeps, *, correlation_id: str | None = None) -> ReplayResult:
    failed = await deps.state.jobs.list(ORDER_JOB, "failed")
    ids = [int(job.key) for job in failed if job.key.isascii() and job.key.isdigit()]
    return await replay_deals(deps, ids, correlation_id=correlation_id)


async def replay_poison(deps: RequeueDeps) -> ReplayResult:
    """Move poison messages back to their queues, order builds and master pushes alike (a parked master
    message would otherwise keep the poison alert firing); the claim still dedupes each of them."""
    moved = 0
    for queue in (deps.queues.order_queue, deps.queues.master_queue):
        moved += await deps.queues.requeue_poison(queue)
    return ReplayResult(poison_requeued=moved)
