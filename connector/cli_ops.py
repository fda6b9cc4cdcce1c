"""The operator's set-up and go-live commands: secrets, register-webhook, doctor, preview, reconcile."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from rich.table import Table

from connector.cli_app import JsonOpt, app, busy, console, emit, secrets_app, usage_error, with_runtime
from connector.errors import ConnectorError
from connector.pipedrive.models import Webhook
from connector.terminal import shown

STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "red"}


def default_app_url() -> str | None:
    """In Azure the host sets WEBSITE_HOSTNAME; elsewhere the URL must be given."""
    host = os.environ.get("WEBSITE_HOSTNAME")
    return f"https://{host}" if host else None


@secrets_app.command("set")
def secrets_set(name: str, value: str = typer.Option(None, help="Omit to be prompted (input hidden).")) -> None:
    """Store a secret in the configured store (the value is never printed)."""
    from connector.secrets import check_name

    check_name(name)
    secret = value if value is not None else typer.prompt(f"value for {name}", hide_input=True)

    async def work(rt: Any) -> None:
        await rt.secrets.set(name, secret)

    with_runtime(work)
    console.print(f"stored {shown(name)}")


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Make the local store's key file, LOCAL_SECRETS_KEY_FILE (mode 0600); an existing one is kept."""
    from connector.secrets import write_key_file
    from connector.settings import get_settings

    try:
        path = get_settings().local_secrets_key_file
    except ConnectorError as exc:
        usage_error(str(exc))
    if path is None:
        usage_error("set LOCAL_SECRETS_KEY_FILE to the key file's path first (e.g. .ml-connector/secrets.key)")
    try:
        write_key_file(path)
    except FileExistsError:
        usage_error(f"{path} exists and is kept: a new key could not read what the old one encrypted")
    console.print(f"new key in {shown(str(path))}")


@app.command("register-webhook")
def register_webhook(url: str = typer.Argument(..., help="Public URL of /api/pipedrive/webhook.")) -> None:
    """Create (or reuse) the Pipedrive webhook for deal changes, with Basic auth from the secret store."""
    from connector.secrets import SecretNames

    async def work(rt: Any) -> Webhook:
        client = await rt.pipedrive()
        password = await rt.secrets.get(SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD)
        return await client.ensure_webhook(
            url, user=rt.settings.pipedrive_webhook_user, password=password, event_action="change", event_object="deal"
        )

    hook = with_runtime(work)
    console.print(f"webhook {hook.id} -> {shown(url)}")


@app.command()
def doctor(
    app_url: str = typer.Option(None, "--app-url", help="This app's base URL, e.g. https://func-….azurewebsites.net."),
    function_key: str = typer.Option(
        None, "--function-key", envvar="ML_CONNECTOR_FUNCTION_KEY", help="Function key for the events route."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Check every setting and mapping name against Pipedrive, D365, Storage and secrets; exit 1 on a failure."""
    from connector.doctor import run_doctor

    async def work(rt: Any) -> Any:
        with busy(as_json, "checking…"):
            return await run_doctor(rt, app_url=app_url or default_app_url(), function_key=function_key)

    report = with_runtime(work)

    def render() -> None:
        table = Table("", "check", "finding", "fix")
        for check in report.checks:
            style = STATUS_STYLE[check.status]
            table.add_row(
                f"[{style}]{check.status}[/{style}]", shown(check.name), shown(check.detail), shown(check.fix)
            )
        console.print(table)
        counts = report.counts
        console.print(f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed")

    emit(as_json, report.as_json(), render)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def preview(deal_id: int, as_json: bool = JsonOpt) -> None:
    """The order (header, lines, customer, dimensions, totals) a build would write for DEAL; writes nothing."""
    from connector.preview import preview_deal

    async def work(rt: Any) -> Any:
        _ = rt.mapping  # a bad mapping file fails here, naming the key
        return await preview_deal(await rt.order_deps(), deal_id)

    result = with_runtime(work)

    def render() -> None:
        from connector.preview_render import render_preview

        render_preview(console, result)

    emit(as_json, result.model_dump(mode="json"), render)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def reconcile(
    since: str = typer.Option("30d", "--since", help="Period: 30d, 12h, 90m, or a date (2026-11-01)."),
    as_json: bool = JsonOpt,
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (one row per finding) for a spreadsheet."),
) -> None:
    """Won deals of the period against their D365 orders, and our D365 orders against Pipedrive; reads only.

    Each won deal: its order, customer, lines and totals. Each D365 order with our reference: a won deal
    behind it. Exits 1 on any mismatch.
    """
    from connector.reconcile.render import render_reconcile, to_csv
    from connector.reconcile.run import parse_since
    from connector.reconcile.run import reconcile as run_reconcile

    try:
        start = parse_since(since)
    except ValueError as exc:
        usage_error(str(exc))

    async def work(rt: Any) -> Any:
        _ = rt.mapping
        with busy(as_json or as_csv, "reconciling…"):
            return await run_reconcile(await rt.order_deps(), start, stale_after=rt.settings.job_stale_seconds)

    report = with_runtime(work)
    if as_csv:
        sys.stdout.write(to_csv(report))
    else:
        payload = {**report.model_dump(mode="json"), "mismatches": report.mismatches, "counts": report.counts}
        emit(as_json, payload, lambda: render_reconcile(console, report))
    if report.mismatches:
        raise typer.Exit(1)
