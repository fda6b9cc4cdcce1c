"""What the admin page shows, read through the stores (JobStore, AuditLog, Queues): no HTML here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.doctor import DoctorReport
    from connector.runtime import Runtime
    from connector.state.audit import AuditEntry

STATES = ("queued", "running", "done", "failed")
MAX_FAILED_SHOWN = 200


@dataclass
class FailedJob:
    kind: str
    key: str
    reason: str
    updated: str
    attempts: int


@dataclass
class QueueView:
    name: str
    depth: int | str
    poison_depth: int | str
    poison: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AdminView:
    jobs: dict[str, dict[str, int]]  # kind group (orders, masters) -> state -> count
    failed: list[FailedJob]
    queues: list[QueueView]
    last_poll: str | None
    deal_id: int | None = None
    trail: list[AuditEntry] | None = None
    doctor: DoctorReport | None = None
    problems: list[str] = field(default_factory=list)  # what could not be read (storage trouble)


async def admin_view(
    rt: Runtime, *, deal_id: int | None = None, with_doctor: bool = False, **doctor_args: Any
) -> AdminView:
    from connector.errors import ConnectorError
    from connector.flows.poll import CHECKPOINT
    from connector.state.jobs import MASTER_JOBS, ORDER_JOB

    view = AdminView(jobs={}, failed=[], queues=[], last_poll=None, deal_id=deal_id)
    try:
        for group, kinds in (("orders", (ORDER_JOB,)), ("master pushes", MASTER_JOBS)):
            counts = dict.fromkeys(STATES, 0)
            for kind in kinds:
                for job in await rt.state.jobs.list(kind):
                    counts[job.state] = counts.get(job.state, 0) + 1
                    if job.state == "failed":
                        view.failed.append(
                            FailedJob(kind, job.key, job.last_error or "", _when(job.updated), job.attempts)
                        )
            view.jobs[group] = counts
        view.failed.sort(key=lambda j: j.updated, reverse=True)
        del view.failed[MAX_FAILED_SHOWN:]
        view.last_poll = await rt.state.checkpoints.get(CHECKPOINT)
    except ConnectorError as exc:
        view.problems.append(f"jobs: {exc}")
    for queue in (rt.queues.order_queue, rt.queues.master_queue):
        view.queues.append(await _queue(rt, queue, view.problems))
    if deal_id is not None:
        try:
            view.trail = await rt.state.audit.trail(f"deal-{deal_id}")
        except ConnectorError as exc:
            view.problems.append(f"audit: {exc}")
    if with_doctor:
        from connector.doctor import run_doctor

        view.doctor = await run_doctor(rt, **doctor_args)
    return view


async def _queue(rt: Runtime, queue: str, problems: list[str]) -> QueueView:
    from connector.errors import ConnectorError

    try:
        view = QueueView(queue, await rt.queues.depth(queue), await rt.queues.poison_depth(queue))
        for msg in await rt.queues.peek_poison(queue, max_messages=10):
            parsed = msg.message
            view.poison.append(
                {
                    "id": msg.id,
                    "inserted": str(msg.inserted_on or ""),
                    "subject": parsed.subject if parsed is not None else "(malformed)",
                    "error": msg.error or "",
                }
            )
        return view
    except ConnectorError as exc:
        problems.append(f"queue {queue}: {exc}")
        return QueueView(queue, "?", "?")


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""
