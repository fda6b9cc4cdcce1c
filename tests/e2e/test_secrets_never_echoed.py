"""The serve admin key, and no credential in a response or a log line whatever
the input (malformed headers the HTTP parser refuses, SDK and aiohttp loggers, job rows, tracebacks)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys

import pytest
from cryptography.fernet import Fernet

from connector.admin_key import SECRET_NAME, resolve_admin_key
from connector.dev.sandbox.stack import WEBHOOK_USER
from connector.errors import ConfigError
from connector.logging_setup import configure_logging
from connector.secrets import LocalSecretStore
from tests.fixtures.stack import E2E


async def raw_request(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    return answer


def credential_forms(e2e: E2E) -> list[str]:
    password = e2e.stack.webhook_password
    token = base64.b64encode(f"{WEBHOOK_USER}:{password}".encode()).decode()
    return [password, token]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"Authorization: Basic {token}\x01", id="control-char-after-credentials"),
        pytest.param(b"Authorization : Basic {token}", id="space-before-colon"),
        pytest.param(b"Authorization: Basic {token}\r\n continued", id="obsolete-line-folding"),
        pytest.param(b"Authorization: Basic {token}" + b"A" * 9000, id="header-too-long"),
        pytest.param(b"X-Functions-Key: {key}\x7f", id="function-key-with-del"),
        pytest.param(b"Authorization: Basic {user}:{password}\x00", id="raw-pair-with-nul"),
    ],
)
async def test_malformed_header_with_the_real_credential_is_not_echoed_or_logged(
    e2e: E2E, caplog: pytest.LogCaptureFixture, header: bytes
) -> None:
    configure_logging()
    password = e2e.stack.webhook_password
    token = base64.b64encode(f"{WEBHOOK_USER}:{password}".encode()).decode()
    line = (
        header.replace(b"{token}", token.encode())
        .replace(b"{key}", e2e.host.admin_key.encode())
        .replace(b"{user}", WEBHOOK_USER.encode())
        .replace(b"{password}", password.encode())
    )
    request = b"POST /api/pipedrive/webhook HTTP/1.1\r\nHost: x\r\n" + line + b"\r\nContent-Length: 2\r\n\r\n{}"
    with caplog.at_level(logging.DEBUG):
        answer = await raw_request(e2e.host.port, request)
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400"), answer[:200]
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body) == {"error": "malformed HTTP request"}
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    for secret in [*credential_forms(e2e), e2e.host.admin_key]:
        assert secret.encode() not in answer
        assert secret not in logged
    assert "malformed HTTP request" in logged
    assert await e2e.queue_depth() == 0


async def test_every_logger_scrubs_known_secrets_and_credential_headers(
    e2e: E2E, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp's and the Azure SDKs' loggers, exception texts and tracebacks: all scrubbed where made."""
    configure_logging()
    password, token = credential_forms(e2e)
    await e2e.rt.secrets.get("pipedrive-webhook-password")  # what the app reads is remembered
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("aiohttp.server").error("bad header %r", f"Authorization: Basic {token}")
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").warning("x-functions-key: abcdefgh123")
        try:
            raise RuntimeError(f"login failed for {WEBHOOK_USER}:{password}")
        except RuntimeError:
            logging.getLogger("azure.data.tables").exception("request failed")
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert password not in logged and token not in logged and "abcdefgh123" not in logged
    assert "RuntimeError" in logged and "***" in logged


async def test_last_error_on_job_rows_is_scrubbed(e2e: E2E) -> None:
    password = e2e.stack.webhook_password
    await e2e.rt.secrets.get("pipedrive-webhook-password")
    await e2e.rt.queues.enqueue_order(101, reason="poll", correlation_id="c-1")
    job = await e2e.rt.state.jobs.claim("order", "101", worker="w", lease_seconds=30)
    assert job is not None
    await e2e.rt.state.jobs.fail(job, f"D365 said: bad login {password}; Authorization: Bearer abc.def")
    stored = await e2e.rt.state.jobs.get("order", "101")
    assert stored is not None and stored.last_error is not None
    assert password not in stored.last_error and "abc.def" not in stored.last_error


# ---- the admin key of `ml-connector serve` --------------------------------------------------------


@pytest.fixture
def store(tmp_path: object) -> LocalSecretStore:
    from pathlib import Path

    return LocalSecretStore(Path(str(tmp_path)) / "secrets.enc", Fernet.generate_key())


async def test_serve_makes_a_key_once_on_loopback_and_keeps_it(store: LocalSecretStore) -> None:
    key, made = await resolve_admin_key(store, "127.0.0.1", None)
    assert made and len(key) >= 32 and await store.get(SECRET_NAME) == key
    again, made_again = await resolve_admin_key(store, "::1", None)
    assert (again, made_again) == (key, False)
    flag, made_flag = await resolve_admin_key(store, "0.0.0.0", "f" * 32)
    assert (flag, made_flag) == ("f" * 32, False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.internal"])
async def test_serve_refuses_a_public_bind_without_a_key(store: LocalSecretStore, host: str) -> None:
    with pytest.raises(ConfigError, match="refusing to serve"):
        await resolve_admin_key(store, host, None)
    assert SECRET_NAME not in await store.names()
    await store.set(SECRET_NAME, "k" * 40)  # once the operator stored one, a public bind is fine
    assert await resolve_admin_key(store, host, None) == ("k" * 40, False)


@pytest.mark.parametrize("bad", ["short", "ключ" * 10, "a b" * 10, "k" * 300, "a,b" * 10])
async def test_serve_refuses_an_unusable_key(store: LocalSecretStore, bad: str) -> None:
    with pytest.raises(ConfigError, match="admin key"):
        await resolve_admin_key(store, "127.0.0.1", bad)


async def test_serve_command_refuses_a_public_bind_without_a_key(e2e: E2E) -> None:
    env = {**os.environ, **e2e.stack.env}
    env.pop("ML_CONNECTOR_ADMIN_KEY", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector.cli", "serve", "--host", "0.0.0.0", "--port", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, out + err
    assert b"refusing to serve the admin routes on 0.0.0.0 without a key" in out + err
