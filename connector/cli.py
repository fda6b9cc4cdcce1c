"""`ml-connector`: the operator's command line. This module: the commands that run work now (sync, replay,
push-masters) and the local runner (serve); `cli_status` inspects, `cli_ops` sets up and goes live.

Human output is rich tables; `--json` prints one JSON document for scripts. Configuration comes from
the same settings as the function app (environment variables), so a command sees what the app sees.
This module ships in the deployment zip but never runs there (the host runs function_app.py); `serve`
and the `--run`/`sync` drains use the local runner of the development package `connector.dev`, which
the zip leaves out, so they import it inside the command: the CLI runs from a checkout, which has it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import typer
from rich.table import Table

from connector.cli_app import JsonOpt, app, busy, console, emit, usage_error, with_runtime
from connector.terminal import shown


@app.command()
def sync(as_json: bool = JsonOpt) -> None:
    """One poll of won deals and one drain of the order queue, without the Functions host."""
    from connector.dev.localhost import QueuePump
    from connector.flows.poll import poll_won_deals

    async def work(rt: Any) -> dict[str, Any]:
        _ = rt.mapping  # a bad mapping file fails now, naming the key, before anything is queued
        with busy(as_json, "polling Pipedrive for won deals…"):
            polled = await poll_won_deals(await rt.poll_deps())
        with busy(as_json, "building orders…"):
            stats = await QueuePump(rt).drain()
        return {
            "poll": {"since": polled.since, "seen": polled.seen, "enqueued": polled.enqueued},
            "processed": stats.processed,
            "outcomes": stats.outcomes,
            "failed_attempts": stats.failed_attempts,
            "poisoned": stats.poisoned,
        }

    result = with_runtime(work)

    def render() -> None:
        poll = result["poll"]
        console.print(f"poll: {poll['seen']} won deals since {poll['since']}, {poll['enqueued']} queued")
        table = Table("outcome", "messages")
        for outcome, count in sorted(result["outcomes"].items()):
            table.add_row(outcome, str(count))
        console.print(table)
        if result["poisoned"]:
            console.print(f"[red]{result['poisoned']} message(s) moved to the poison queue[/red]")

    emit(as_json, result, render)


@app.command()
def replay(
    deal_ids: list[int] = typer.Argument(None, help="Deal ids to re-queue."),
    failed: bool = typer.Option(False, "--failed", help="Re-queue every failed order job."),
    poison: bool = typer.Option(False, "--poison", help="Move parked messages back to the order and master queues."),
    run: bool = typer.Option(False, "--run", help="Drain the order queue right away (without the host)."),
    as_json: bool = JsonOpt,
) -> None:
    """Re-queue deals; the same dedupe applies, so a replay never creates a second order."""
    from connector.dev.localhost import QueuePump
    from connector.flows.replay import ReplayResult, parse_deal_ids, replay_deals, replay_failed, replay_poison
    from connector.inputs import BadInput

    if not (deal_ids or failed or poison):
        usage_error("give deal ids, --failed or --poison")
    try:
        deal_ids = parse_deal_ids(list(deal_ids or []), "deal ids")  # all valid, or nothing is queued
    except BadInput as exc:
        usage_error(str(exc))

    async def work(rt: Any) -> dict[str, Any]:
        parts: list[ReplayResult] = []
        deps = await rt.requeue_deps()
        if deal_ids:
            parts.append(await replay_deals(deps, list(deal_ids)))
        if failed:
            parts.append(await replay_failed(deps))
        if poison:
            parts.append(await replay_poison(deps))
        out: dict[str, Any] = {
            "requeued": [d for p in parts for d in p.requeued],
            "skipped": {str(k): v for p in parts for k, v in p.skipped.items()},
            "poison_requeued": sum(p.poison_requeued for p in parts),
        }
        if run:
            stats = await QueuePump(rt).drain()
            out["outcomes"] = stats.outcomes
        return out

    result = with_runtime(work)

    def render() -> None:
        console.print(f"re-queued: {', '.join(map(str, result['requeued'])) or 'none'}")
        for deal, state in result["skipped"].items():
            console.print(f"skipped deal {shown(deal)}: job is {shown(state)}")
        if result["poison_requeued"]:
            console.print(f"poison messages re-queued: {result['poison_requeued']}")
        if "outcomes" in result:
            console.print(f"outcomes: {result['outcomes']}")

    emit(as_json, result, render)


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
        usage_error(f"--entity must be products, customers or all, not {entity!r}")

    async def work(rt: Any) -> dict[str, Any]:
        with busy(as_json, "reading D365 masters…"):
            inline = math.inf if run else 0.0  # --run pushes what the diff read; otherwise the host's workers do
            diff = await master_diff(await rt.diff_deps(), entity, reason="cli", inline_seconds=inline)  # type: ignore[arg-type]
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
            with busy(as_json, "pushing to Pipedrive…"):
                stats = await QueuePump.for_masters(rt).drain()
            out["outcomes"] = stats.outcomes
            out["poisoned"] = stats.poisoned
        return out

    result = with_runtime(work)

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
            console.print(f"[yellow]skipped[/yellow] {shown(why)}")
        if "outcomes" in result:
            console.print(f"outcomes: {result['outcomes']}")
            if result["poisoned"]:
                console.print(f"[red]{result['poisoned']} message(s) moved to the poison queue[/red]")

    emit(as_json, result, render)


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

    configure_logging(force_handler=True)  # the app's logging and scrubbing; never inside the Functions host

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
        with_runtime(work)
    except KeyboardInterrupt:
        console.print("stopped")


# The inspect and go-live commands: their modules add them to `app` (after these, in `--help`).
from connector import cli_ops, cli_status  # noqa: E402

COMMAND_MODULES = (cli_status, cli_ops)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
