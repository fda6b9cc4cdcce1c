"""The webhook with its optional HMAC-SHA256 signature switched on (PIPEDRIVE_WEBHOOK_SIGNATURE_HEADER and the
signing secret): a signed delivery is queued; a missing, wrong, repeated or non-ASCII signature is a 4xx that
queues nothing and echoes no secret, over the local runner's raw HTTP and through the decorated handler."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import azure.functions as func
import pytest

from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.stack import WEBHOOK_USER
from connector.pipedrive.webhooks import sign
from connector.secret_names import SecretNames
from tests.fixtures.platform import app_function
from tests.fixtures.stack import E2E, open_e2e
from tests.pipedrive.test_webhook_payloads import v2_won

HEADER = "X-Pipedrive-Signature"
SECRET = "signing-secret-0123456789abcdef"


@pytest.fixture
async def signed(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[E2E]:
    async with open_e2e(azurite, monkeypatch, extra_env={"PIPEDRIVE_WEBHOOK_SIGNATURE_HEADER": HEADER}) as e2e:
        await e2e.rt.secrets.set(SecretNames.PIPEDRIVE_WEBHOOK_SIGNING_SECRET, SECRET)
        yield e2e


async def raw_post(e2e: E2E, body: bytes, extra: list[bytes]) -> tuple[int, bytes]:
    """One request written byte for byte (no client library cleans a header)."""
    token = base64.b64encode(f"{WEBHOOK_USER}:{e2e.stack.webhook_password}".encode())
    head = [b"POST /api/pipedrive/webhook HTTP/1.1", b"Host: x", b"Authorization: Basic " + token,
            b"Content-Type: application/json", b"Content-Length: %d" % len(body), *extra]  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", e2e.host.port)
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest.partition(b"\r\n\r\n")[2]


async def test_signed_webhooks_over_raw_http(signed: E2E) -> None:
    body = json.dumps(v2_won(entity_id="101")).encode()
    good = sign(body, SECRET).encode()
    cases = [
        ([], 401),
        ([f"{HEADER}: ".encode() + sign(b"other", SECRET).encode()], 401),
        ([f"{HEADER}: sha256=".encode() + good[:-1] + b"\xff"], 401),  # a non-ASCII byte in the signature
        ([f"{HEADER}: ".encode() + "é".encode() * 32], 401),
        ([f"{HEADER}: ".encode() + good, f"{HEADER}: ".encode() + good], 400),  # two values: not guessed at
    ]
    for extra, status in cases:
        got, text = await raw_post(signed, body, extra)
        assert got == status, (extra, got, text)
        assert json.loads(text)["error"] and SECRET.encode() not in text and good not in text
        assert await signed.queue_depth() == 0
    got, text = await raw_post(signed, body, [f"{HEADER}: sha256=".encode() + good.upper()])
    assert got == 200 and json.loads(text) == {"status": "queued", "deal_id": 101}, text


async def test_signed_webhooks_through_the_function_handler(signed: E2E) -> None:
    handler = app_function("pipedrive_webhook").get_user_function()
    body = json.dumps(v2_won(entity_id="102")).encode()
    token = base64.b64encode(f"{WEBHOOK_USER}:{signed.stack.webhook_password}".encode()).decode()
    for signature, status in ((None, 401), ("0" * 64, 401), ("\udcff" * 64, 401), (sign(body, SECRET), 200)):
        headers = {"Authorization": f"Basic {token}", **({HEADER: signature} if signature is not None else {})}
        answer = await handler(
            func.HttpRequest(method="POST", url="/api/pipedrive/webhook", body=body, headers=headers)
        )
        assert answer.status_code == status, (signature, answer.get_body())
    assert await signed.queue_depth() == 1
