"""`ml-connector audit` and `status`: what happened to a deal (or any audited subject), and where every job
and queue stands."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from connector.cli_app import JsonOpt, app, console, emit, usage_error, with_runtime
from connector.terminal import shown

MAX_SUBJECT = 300


def audit_subject(target: str) -> str:
    """A deal id names its trail (`deal-<id>`); anything else is a subject as docs/audit-events.md lists
    them (`product-<le>-<item>`, `customer-<le>-<account>`, `poll`, `replay`, `queue-<name>` ...)."""
    text = target.strip()
    if text.isascii() and text.isdigit():
        return f"deal-{int(text)}"
    if not target or len(target) > MAX_SUBJECT or not target.isprintable():
        raise ValueError(f"audit: give a deal id or a subject of 1-{MAX_SUBJECT} printable characters")
    return target  # item numbers may carry spaces (" RFI-TEST-001"): kept as typed


@app.command()
def audit(
    target: str = typer.Argument(
        ...,
        help="A deal id, or a subject: product-<le>-<item>, customer-<le>-<account>, poll, master-diff, "
        "replay, d365-events, queue-<queue name> (docs/audit-events.md).",
    ),
    last: int = typer.Option(200, "--last", min=1, help="Show only the newest N rows."),
    as_json: bool = JsonOpt,
) -> None:
    """The audit trail of a deal or any other subject, oldest first."""
    try:
        subject = audit_subject(target)
    except ValueError as exc:
        usage_error(str(exc))

    async def work(rt: Any) -> list[dict[str, Any]]:
        entries = await rt.state.audit.trail(subject)
        return [e.model_dump(mode="json") for e in entries[-last:]]

    rows = with_runtime(work)

    def render() -> None:
        if not rows:
            console.print(f"no audit entries for {shown(subject)}")
            return
        table = Table("time", "level", "event", "correlation", "detail", title=shown(subject))
        for row in rows:
            detail = json.dumps(row.get("detail") or {}, default=str)
            table.add_row(*(shown(row.get(k, "")) for k in ("at", "level", "event", "correlation_id")), shown(detail))
        console.print(table)

    emit(as_json, rows, render)


@app.command()
def status(as_json: bool = JsonOpt) -> None:
    """Jobs by state, the deals needing attention, queue depths and the poll checkpoint.

    Needing attention: the deals that failed, are stuck or are backing off (ids and reasons), and the deals
    parked in the poison queue. Queues: orders and masters, each with its poison queue.
    """
    from connector.flows.poll import CHECKPOINT
    from connector.queues import OrderBuild
    from connector.state.jobs import MASTER_JOBS, ORDER_JOB
    from connector.state.tables import now

    async def work(rt: Any) -> dict[str, Any]:
        jobs = await rt.state.jobs.list(ORDER_JOB)
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.state] = counts.get(job.state, 0) + 1
        failed = [{"deal_id": j.key, "reason": j.last_error, "updated": j.updated} for j in jobs if j.state == "failed"]
        at, grace = now(), rt.settings.reconcile_grace_seconds
        stuck = [
            {"deal_id": j.key, "state": j.state, "since": j.updated, "last_error": j.last_error}
            for j in jobs
            if j.stranded(grace, at)
        ]
        retrying = [
            {"deal_id": j.key, "failures": j.failures, "retry_at": j.retry_at, "last_error": j.last_error}
            for j in jobs
            if j.state == "queued" and j.failures and not j.stranded(grace, at)
        ]
        queue = rt.queues.order_queue
        parked = await rt.queues.peek_poison(queue)
        poisoned = sorted({str(p.message.deal_id) for p in parked if isinstance(p.message, OrderBuild)})
        masters = [j for kind in MASTER_JOBS for j in await rt.state.jobs.list(kind)]
        return {
            "jobs": counts,
            "failed": failed,
            "stuck": stuck,
            "retrying": retrying,
            "poisoned_deals": poisoned,
            "queue_depth": await rt.queues.depth(queue),
            "poison_depth": await rt.queues.poison_depth(queue),
            "poll_checkpoint": await rt.state.checkpoints.get(CHECKPOINT),
            "master_queue_depth": await rt.queues.depth(rt.queues.master_queue),
            "master_poison_depth": await rt.queues.poison_depth(rt.queues.master_queue),
            "master_failed": [
                {"job": f"{j.kind}/{j.key}", "reason": j.last_error} for j in masters if j.state == "failed"
            ],
        }

    result = with_runtime(work)

    def render() -> None:
        table = Table("state", "jobs")
        for state in ("queued", "running", "done", "failed"):
            table.add_row(state, str(result["jobs"].get(state, 0)))
        console.print(table)
        console.print(f"order queue: {result['queue_depth']}  poison: {result['poison_depth']}")
        if result["poisoned_deals"]:
            console.print(f"[red]deals in the poison queue:[/red] {shown(', '.join(result['poisoned_deals']))}")
        for row in result["stuck"]:
            console.print(f"[yellow]stuck[/yellow] deal {shown(row['deal_id'])} ({row['state']} since {row['since']}): "
                          f"{shown(row['last_error'] or 'no message; the reconciler re-queues it')}")  # fmt: skip
        for row in result["retrying"]:
            console.print(f"backing off: deal {shown(row['deal_id'])} (failure {row['failures']}, next try "
                          f"{row['retry_at']}): {shown(row['last_error'])}")  # fmt: skip
        console.print(f"poll checkpoint: {result['poll_checkpoint'] or 'never polled'}")
        console.print(f"master queue: {result['master_queue_depth']}  poison: {result['master_poison_depth']}")
        for row in result["master_failed"]:
            console.print(f"[red]failed master push[/red] {shown(row['job'])}: {shown(row['reason'])}")
        if result["failed"]:
            failed = Table("deal", "reason", title="failed jobs")
            for row in result["failed"]:
                failed.add_row(shown(row["deal_id"]), shown(row["reason"]))
            console.print(failed)

    emit(as_json, result, render)
