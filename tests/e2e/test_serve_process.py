"""`ml-connector serve` as an operator runs it: one runtime for the runner and the function bodies it
serves, closed on Ctrl-C, so a stop leaves no client session or connection open behind it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from connector.runtime import Runtime, get_runtime
from connector.settings import get_settings
from tests.fixtures.platform import BASE_ENV
from tests.fixtures.stack import E2E


async def test_serve_stops_with_every_client_closed(e2e: E2E) -> None:
    # FUNCTIONS_WORKER_RUNTIME: what a shell has after exporting local.settings.json (README); serve still logs.
    env = {**os.environ, **e2e.stack.env, "PYTHONUNBUFFERED": "1", "FUNCTIONS_WORKER_RUNTIME": "python"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector.cli", "serve", "--port", "0", "--poll-every", "0", "--master-every", "0",
        "--reconcile-every", "0", "--admin-key", "k" * 40,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    logged = b""
    try:
        base = ""
        while not base:  # the runner prints its address once it listens
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "serve exited before it listened"
            if line.startswith("serving "):
                base = line.split()[1].removesuffix("/api/pipedrive/webhook")
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/api/health")).status_code == 200  # a function body on storage
        await e2e.win(110)  # the runner's queue worker builds it: storage, Pipedrive and D365 clients
        while b'\\"op\\":\\"order.build\\"' not in logged:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, "serve exited before it built the order"
            logged += line
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + logged + err).decode()
    assert '\\"outcome\\":\\"created\\"' in text and "stopped" in text
    assert "Unclosed" not in text, text[-2000:]


def test_a_command_and_the_function_bodies_it_runs_share_the_runtime(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from connector import cli, runtime

    env = {**BASE_ENV, "AzureWebJobsStorage": "UseDevelopmentStorage=true",
           "LOCAL_SECRETS_KEY": Fernet.generate_key().decode(), "LOCAL_SECRETS_FILE": str(tmp_path / "s.enc")}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:

        async def work(rt: Runtime) -> bool:
            return await get_runtime() is rt  # what `get_runtime()` in a function body returns

        assert cli.with_runtime(work)
        assert runtime._runtimes == {}  # closed and forgotten when the command ended
    finally:
        get_settings.cache_clear()
