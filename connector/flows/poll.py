"""Timer poll: the safety net under webhooks. Won deals updated since the watermark are enqueued;
the job guard makes overlap, and races with webhooks, harmless.

The watermark is Pipedrive's own `update_time` of the newest deal seen (never our clock, which may
differ), minus an overlap for late-committed updates; it advances only after every enqueue worked.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from connector.flows.deps import PollDeps
from connector.state.jobs import ORDER_JOB

if TYPE_CHECKING:
    from connector.pipedrive.client import PipedriveClient
    from connector.pipedrive.models import Deal

CHECKPOINT = "poll.won-deals"
# First run without a watermark: look back this far (a fresh install picks up the last day's wins).
INITIAL_LOOKBACK = timedelta(days=1)


@dataclass
class PollResult:
    since: datetime
    seen: int
    enqueued: int
    watermark: datetime | None


async def poll_won_deals(deps: PollDeps, *, now: datetime | None = None) -> PollResult:
    correlation_id = f"poll-{uuid.uuid4().hex[:12]}"
    raw = await deps.state.checkpoints.get(CHECKPOINT)
    watermark = datetime.fromisoformat(raw) if raw else None
    overlap = timedelta(seconds=deps.overlap_seconds)
    since = (watermark - overlap) if watermark else (now or datetime.now(UTC)) - INITIAL_LOOKBACK

    seen = enqueued = 0
    newest = watermark
    async for deal in won_deals(deps.pipedrive, since, archived=deps.archived):
        seen += 1
        if await _failed_since_last_change(deps, deal.id, deal.update_time):
            continue
        if await deps.queues.enqueue_order(deal.id, reason="poll", correlation_id=correlation_id):
            enqueued += 1
        if deal.update_time is not None and (newest is None or deal.update_time > newest):
            newest = deal.update_time
    if newest is not None and newest != watermark:
        await deps.state.checkpoints.set(CHECKPOINT, newest.isoformat())
    await deps.state.audit.append(
        "poll",
        "poll.done",
        correlation_id=correlation_id,
        level="info" if enqueued else "debug",
        detail={"since": since.isoformat(), "seen": seen, "enqueued": enqueued},
    )
    return PollResult(since=since, seen=seen, enqueued=enqueued, watermark=newest)


async def won_deals(pipedrive: PipedriveClient, since: datetime, *, archived: bool) -> AsyncIterator[Deal]:
    """Won deals changed since `since`: the live list, then (with `archived`) the archived one, which
    Pipedrive's `/deals` leaves out. A deal archived between the two reads is in the second; the
    watermark's overlap covers one archived just before the first."""
    async for deal in pipedrive.iter_won_deals(since):
        yield deal
    if archived:
        async for deal in pipedrive.iter_won_deals(since, archived=True):
            yield deal


async def _failed_since_last_change(deps: PollDeps, deal_id: int, updated: datetime | None) -> bool:
    """A failed job is not retried blindly by every poll: only a replay, a new webhook, or a change to the
    deal after the failure (its update_time is newer) re-opens it."""
    job = await deps.state.jobs.get(ORDER_JOB, str(deal_id))
    if job is None or job.state != "failed" or job.updated is None:
        return False
    return updated is None or updated <= job.updated
