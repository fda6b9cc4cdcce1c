"""`ml-connector`: the operator's command line (sync, push-masters, replay, audit, status, serve, secrets,
webhook).

Human output is rich tables; `--json` prints one JSON document for scripts. Configuration comes from
the same settings as the function app (environment / .env), so a command sees what the app sees.
This module ships in the deployment zip but never runs there (the host runs function_app.py); `serve`
and the `--run`/`sync` drains use the local runner of the development package `connector.dev`, which
the zip leaves out, so they import it inside the command: the CLI runs from a checkout, which has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from connector.errors import ConnectorError

app = typer.Typer(help="ml-connector: Pipedrive -> D365 F&O orders, run and inspected from the shell.")
secrets_app = typer.Typer(help="Manage the local encrypted secret store (Key Vault is managed with az).")
app.add_typer(secrets_app, name="secrets")
console = Console()
T = TypeVar("T")

JsonOpt = typer.Option(False, "--json", help="Print JSON for scripts instead of tables.")


def _run(work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the runtime, run `work(rt)`, close; configuration errors exit 2 with one clear line.

    It is the event loop's runtime, the one the function bodies (`serve`'s routes, queue workers and
    timers) get too: one set of clients, all closed when the command ends.
    """
    from connector.runtime import close_runtime, get_runtime

    async def main() -> T:
        try:
            return await work(await get_runtime())
        finally:
            await close_runtime()

    try:
        return asyncio.run(main())
    except ConnectorError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _emit(as_json: bool, payload: Any, render: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str, indent=2) + "\n")
    else:
        render()


@app.command()
def sync(as_json: bool = JsonOpt) -> None:
    """One poll of won deals and one drain of the order queue, without the Functions host."""
    from connector.dev.localhost import QueuePump
    from connector.flows.poll import poll_won_deals

    async def work(rt: Any) -> dict[str, Any]:
        _ = rt.mapping  # a bad mapping file fails now, naming the key, before anything is queued
        with (
            console.status("polling Pipedrive for won deals…", spinner="dots")
            if not as_json
            else contextlib.nullcontext()
        ):
            polled = await poll_won_deals(rt)
        with console.status("building orders…", spinner="dots") if not as_json else contextlib.nullcontext():
            stats = await QueuePump(rt).drain()
        return {
            "poll": {"since": polled.since, "seen": polled.seen, "enqueued": polled.enqueued},
            "processed": stats.processed,
            "outcomes": stats.outcomes,
            "failed_attempts": stats.failed_attempts,
            "poisoned": stats.poisoned,
        }

    result = _run(work)

    def render() -> None:
        poll = result["poll"]
        console.print(f"poll: {poll['seen']} won deals since {poll['since']}, {poll['enqueued']} queued")
        table = Table("outcome", "messages")
        for outcome, count in sorted(result["outcomes"].items()):
            table.add_row(outcome, str(count))
        console.print(table)
        if result["poisoned"]:
            console.print(f"[red]{result['poisoned']} message(s) moved to the poison queue[/red]")

    _emit(as_json, result, render)


@app.command()
def replay(
    deal_ids: list[int] = typer.Argument(None, help="Deal ids to re-queue."),
    failed: bool = typer.Option(False, "--failed", help="Re-queue every failed order job."),
    poison: bool = typer.Option(False, "--poison", help="Move the poison queue back to the order queue."),
    run: bool = typer.Option(False, "--run", help="Drain the order queue right away (without the host)."),
    as_json: bool = JsonOpt,
) -> None:
    """Re-queue deals; the same dedupe applies, so a replay never creates a second order."""
    from connector.dev.localhost import QueuePump
    from connector.flows.replay import ReplayResult, parse_deal_ids, replay_deals, replay_failed, replay_poison
    from connector.inputs import BadInput

    if not (deal_ids or failed or poison):
        console.print("[red]error:[/red] give deal ids, --failed or --poison")
        raise typer.Exit(2)
    try:
        deal_ids = parse_deal_ids(list(deal_ids or []), "deal ids")  # all valid, or nothing is queued
    except BadInput as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None

    async def work(rt: Any) -> dict[str, Any]:
        parts: list[ReplayResult] = []
        if deal_ids:
            parts.append(await replay_deals(rt, list(deal_ids)))
        if failed:
            parts.append(await replay_failed(rt))
        if poison:
            parts.append(await replay_poison(rt))
        out: dict[str, Any] = {
            "requeued": [d for p in parts for d in p.requeued],
            "skipped": {str(k): v for p in parts for k, v in p.skipped.items()},
            "poison_requeued": sum(p.poison_requeued for p in parts),
        }
        if run:
            stats = await QueuePump(rt).drain()
            out["outcomes"] = stats.outcomes
        return out

    result = _run(work)

    def render() -> None:
        console.print(f"re-queued: {', '.join(map(str, result['requeued'])) or 'none'}")
        for deal, state in result["skipped"].items():
            console.print(f"skipped deal {deal}: job is {state}")
        if result["poison_requeued"]:
            console.print(f"poison messages re-queued: {result['poison_requeued']}")
        if "outcomes" in result:
            console.print(f"outcomes: {result['outcomes']}")

    _emit(as_json, result, render)


@app.command("push-masters")
def push_masters(
    entity: str = typer.Option("all", "--entity", help="products, customers or all."),
    run: bool = typer.Option(
        False, "--run", help="Push the changes right away (without the host), then drain the master queue."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Diff D365 products/customers against what was last pushed: queue a push for each change, or push now."""
    from connector.dev.localhost import QueuePump
    from connector.flows.master_diff import master_diff

    if entity not in ("products", "customers", "all"):
        console.print(f"[red]error:[/red] --entity must be products, customers or all, not {entity!r}")
        raise typer.Exit(2)

    async def work(rt: Any) -> dict[str, Any]:
        with console.status("reading D365 masters…", spinner="dots") if not as_json else contextlib.nullcontext():
            inline = math.inf if run else 0.0  # --run pushes what the diff read; otherwise the host's workers do
            diff = await master_diff(rt, entity, reason="cli", inline_seconds=inline)  # type: ignore[arg-type]
        out: dict[str, Any] = {
            "correlation_id": diff.correlation_id,
            "legal_entities": diff.legal_entities,
            "seen": diff.seen,
            "changed": diff.changed,
            "pushed": {kind: dict(outcomes) for kind, outcomes in diff.pushed.items()},
            "enqueued": diff.enqueued,
            "skipped": diff.skipped,
        }
        if run:
            with console.status("pushing to Pipedrive…", spinner="dots") if not as_json else contextlib.nullcontext():
                stats = await QueuePump.for_masters(rt).drain()
            out["outcomes"] = stats.outcomes
            out["poisoned"] = stats.poisoned
        return out

    result = _run(work)

    def render() -> None:
        console.print(f"legal entities: {', '.join(result['legal_entities'])}")
        table = Table("kind", "read", "changed")
        for kind in ("products", "customers"):
            if kind in result["seen"]:
                table.add_row(kind, str(result["seen"][kind]), str(result["changed"].get(kind, 0)))
        console.print(table)
        for kind, outcomes in result["pushed"].items():
            console.print(f"pushed {kind}: {outcomes}")
        console.print(f"queued: {result['enqueued']}")
        for why in result["skipped"]:
            console.print(f"[yellow]skipped[/yellow] {why}")
        if "outcomes" in result:
            console.print(f"outcomes: {result['outcomes']}")
            if result["poisoned"]:
                console.print(f"[red]{result['poisoned']} message(s) moved to the poison queue[/red]")

    _emit(as_json, result, render)


@app.command()
def audit(deal_id: int, as_json: bool = JsonOpt) -> None:
    """The whole audit trail of a deal, oldest first."""

    async def work(rt: Any) -> list[dict[str, Any]]:
        entries = await rt.state.audit.trail(f"deal-{deal_id}")
        return [e.model_dump(mode="json") for e in entries]

    rows = _run(work)

    def render() -> None:
        if not rows:
            console.print(f"no audit entries for deal {deal_id}")
            return
        table = Table("time", "level", "event", "correlation", "detail", title=f"deal {deal_id}")
        for row in rows:
            detail = json.dumps(row.get("detail") or {}, default=str)
            table.add_row(
                str(row.get("time", "")), row.get("level", ""), row.get("event", ""), row.get("correlation_id", ""),
                detail,
            )  # fmt: skip
        console.print(table)

    _emit(as_json, rows, render)


@app.command()
def status(as_json: bool = JsonOpt) -> None:
    """Jobs by state; the deals that failed, are stuck or are backing off (ids and reasons); the deals parked in
    the poison queue; queue depths (orders and masters); the poll checkpoint."""
    from connector.flows.poll import CHECKPOINT
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
        poisoned = sorted(
            {str(p.message.deal_id) for p in parked if p.message is not None and hasattr(p.message, "deal_id")}
        )
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

    result = _run(work)

    def render() -> None:
        table = Table("state", "jobs")
        for state in ("queued", "running", "done", "failed"):
            table.add_row(state, str(result["jobs"].get(state, 0)))
        console.print(table)
        console.print(f"order queue: {result['queue_depth']}  poison: {result['poison_depth']}")
        if result["poisoned_deals"]:
            console.print(f"[red]deals in the poison queue:[/red] {', '.join(result['poisoned_deals'])}")
        for row in result["stuck"]:
            console.print(f"[yellow]stuck[/yellow] deal {row['deal_id']} ({row['state']} since {row['since']}): "
                          f"{row['last_error'] or 'no message; the reconciler re-queues it'}")  # fmt: skip
        for row in result["retrying"]:
            console.print(f"backing off: deal {row['deal_id']} (failure {row['failures']}, next try {row['retry_at']}): "
                          f"{row['last_error'] or ''}")  # fmt: skip
        console.print(f"poll checkpoint: {result['poll_checkpoint'] or 'never polled'}")
        console.print(f"master queue: {result['master_queue_depth']}  poison: {result['master_poison_depth']}")
        for row in result["master_failed"]:
            console.print(f"[red]failed master push[/red] {row['job']}: {row['reason'] or ''}")
        if result["failed"]:
            failed = Table("deal", "reason", title="failed jobs")
            for row in result["failed"]:
                failed.add_row(str(row["deal_id"]), row["reason"] or "")
            console.print(failed)

    _emit(as_json, result, render)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(7071, help="Port (7071 like the Functions host)."),
    poll_every: float = typer.Option(300.0, help="Seconds between polls (0: no timer)."),
    master_every: float = typer.Option(3600.0, help="Seconds between master diffs (0: no timer)."),
    reconcile_every: float = typer.Option(300.0, help="Seconds between reconciler runs (0: no timer)."),
    admin_key: str = typer.Option(
        None,
        "--admin-key",
        envvar="ML_CONNECTOR_ADMIN_KEY",
        help="Key of the admin routes (x-functions-key header or ?code=); default: the stored one.",
        show_default=False,
    ),
) -> None:
    """The local runner: the app's HTTP routes, both queue workers and the timers, until Ctrl-C.

    The admin routes (replay, D365 events, detailed health) always need a key. Without --admin-key the
    stored one is used; on 127.0.0.1 the first run makes one, stores it and shows it once. Another
    address is refused until a key exists.
    """
    from connector.admin_key import SECRET_NAME, resolve_admin_key
    from connector.dev.localhost import LocalHost
    from connector.logging_setup import configure_logging

    configure_logging()  # the function app's logging, scrubbing included

    async def work(rt: Any) -> None:
        key, made = await resolve_admin_key(rt.secrets, host, admin_key)
        local_host = LocalHost(
            rt, host=host, port=port, poll_every=poll_every or None, master_every=master_every or None,
            reconcile_every=reconcile_every or None, admin_key=key,
        )  # fmt: skip
        async with local_host as local:
            if made:
                console.print(
                    f"new admin key (shown once; stored as secret {SECRET_NAME}): [bold]{key}[/bold]", highlight=False
                )
            console.print(f"serving {local.base_url}/api/pipedrive/webhook and /api/d365/events (Ctrl-C to stop)")
            console.print("admin routes need the key in an x-functions-key header or ?code=", highlight=False)
            console.print(f"admin page: {local.base_url}/api/admin/ui?code=<admin key>", highlight=False)
            await asyncio.Event().wait()

    try:
        _run(work)
    except KeyboardInterrupt:
        console.print("stopped")


@secrets_app.command("set")
def secrets_set(name: str, value: str = typer.Option(None, help="Omit to be prompted (input hidden).")) -> None:
    """Store a secret in the configured store (the value is never printed)."""
    from connector.secrets import check_name

    check_name(name)
    secret = value if value is not None else typer.prompt(f"value for {name}", hide_input=True)

    async def work(rt: Any) -> None:
        await rt.secrets.set(name, secret)

    _run(work)
    console.print(f"stored {name}")


@app.command("register-webhook")
def register_webhook(url: str = typer.Argument(..., help="Public URL of /api/pipedrive/webhook.")) -> None:
    """Create (or reuse) the Pipedrive webhook for deal changes, with Basic auth from the secret store."""
    from connector.secrets import SecretNames

    async def work(rt: Any) -> Any:
        client = await rt.pipedrive()
        password = await rt.secrets.get(SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD)
        return await client.ensure_webhook(
            url, user=rt.settings.pipedrive_webhook_user, password=password, event_action="change", event_object="deal"
        )

    hook = _run(work)
    console.print(f"webhook {getattr(hook, 'id', '?')} -> {url}")


def main() -> None:
    app()


def _register_ops() -> None:
    from connector.cli_ops import register

    register(app)


_register_ops()


if __name__ == "__main__":
    main()
