"""The reconciler (docs/architecture.md, "Job lifecycle"): a timer that finds order and master jobs left
`queued` or `running` with no live lease past a grace period, and sends their message again.

Such a job has lost its message: the worker was killed between the job insert and the queue send, or
mid-step; an undo after a failed send did not land; the host parked the message in the poison queue
after a kill on its last attempt. A duplicate message is harmless (the claim dedupes), so when in doubt
the reconciler sends; each re-send of the same job doubles the wait before the next (`Job.stranded`), so a
message late behind a backlog is not multiplied. A job waiting out a back-off (`retry_at` in the future) is left alone. A job that
keeps losing its worker mid-step fails visibly once its takeovers reach the limit (`JobRunner.run`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from connector.flows.deps import RequeueDeps
from connector.queues import MasterPush, OrderBuild
from connector.state.job_row import Job
from connector.state.jobs import ORDER_JOB, QUEUED_KINDS, LostLeaseError, master_entity
from connector.state.tables import now


@dataclass
class ReconcileResult:
    checked: int = 0
    requeued: list[str] = field(default_factory=list)  # "<kind>/<key>"


def message_for(job: Job, correlation_id: str) -> OrderBuild | MasterPush:
    """The queue message that runs `job` (its kind and key say everything a message carries)."""
    if job.kind == ORDER_JOB:
        return OrderBuild(deal_id=int(job.key), reason="reconcile", correlation_id=correlation_id)
    legal_entity, _, key = job.key.partition(":")
    entity = master_entity(job.kind)
    return MasterPush(entity=entity, key=key, legal_entity=legal_entity, reason="reconcile",
                      correlation_id=correlation_id)  # fmt: skip


async def reconcile_jobs(deps: RequeueDeps, *, at: datetime | None = None) -> ReconcileResult:
    at = at or now()
    grace = deps.grace
    correlation_id = f"reconcile-{uuid.uuid4().hex[:12]}"
    result = ReconcileResult()
    for kind in QUEUED_KINDS:
        for job in await deps.state.jobs.list_open(kind):
            result.checked += 1
            if not job.stranded(grace, at):
                continue
            try:
                # Touch the row first (ETag-conditional): a racing reconciler or worker wins, and the next
                # run does not send again before another grace period.
                await deps.state.jobs.save(job, retry_at=at, resends=job.resends + 1)
            except LostLeaseError:
                continue
            message = message_for(job, correlation_id)
            await deps.queues.send(message)
            result.requeued.append(f"{job.kind}/{job.key}")
            await deps.state.audit.append(
                message.subject,
                "reconcile.requeued",
                correlation_id=correlation_id,
                level="warning",
                detail={"job_state": job.state, "since": (job.updated or at).isoformat(), "attempts": job.attempts,
                        "resends": job.resends + 1, "last_error": job.last_error},
            )  # fmt: skip
    return result
