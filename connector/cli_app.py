"""The `ml-connector` Typer app and what every command module shares: one runtime per command, output as
rich tables or one JSON document, and usage errors that exit 2 with one line.

Commands live by what an operator does with them: `connector.cli` (run work now, serve), `cli_status`
(inspect), `cli_ops` (set up and go live). Each module adds its commands to `app` when imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from connector.errors import ConnectorError
from connector.terminal import shown

app = typer.Typer(help="ml-connector: Pipedrive -> D365 F&O orders, run and inspected from the shell.")
secrets_app = typer.Typer(
    help="Secrets in the configured store: Key Vault if KEY_VAULT_URL is set, else the local file."
)
app.add_typer(secrets_app, name="secrets")
console = Console()
T = TypeVar("T")

JsonOpt = typer.Option(False, "--json", help="Print JSON for scripts instead of tables.")


def with_runtime(work: Callable[[Any], Awaitable[T]]) -> T:
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
        usage_error(str(exc))


def usage_error(message: str) -> NoReturn:
    """One red line and exit status 2 (bad arguments or configuration: nothing was done)."""
    console.print(f"[red]error:[/red] {shown(message)}", highlight=False)
    raise typer.Exit(2) from None


def emit(as_json: bool, payload: Any, render: Callable[[], None]) -> None:
    """The payload as one JSON document for scripts, or `render()`'s tables for a person."""
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str, indent=2) + "\n")
    else:
        render()


def busy(quiet: bool, text: str) -> contextlib.AbstractContextManager[Any]:
    """A spinner while a step runs; none when the output is for a script (`quiet`)."""
    return contextlib.nullcontext() if quiet else console.status(text, spinner="dots")
