"""Property-based tests of every HTTP route: generated and mutated inputs from real
payloads, through the decorated function_app handlers and over the local runner's HTTP. For each input:
no 5xx; a 4xx is a JSON error; nothing is queued unless the raw input is a valid won-deal change, a known
change event or a valid replay (oracles in inputs.py, independent of the parsers); no credential in any
response or log line. Bounded in `make test` (profile `ci`, fixed seed); `make fuzz` runs many more."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import azure.functions as func
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.dev.sandbox.stack import WEBHOOK_USER
from connector.logging_setup import configure_logging
from tests.fixtures.platform import app_function
from tests.fixtures.stack import E2E
from tests.fuzz import inputs

pytestmark = pytest.mark.fuzz
ROUTES = {"pipedrive/webhook": "pipedrive_webhook", "d365/events": "d365_events", "admin/replay": "admin_replay"}


class Probe:
    """Posts to one route and checks the properties every answer must have."""

    def __init__(self, e2e: E2E, caplog: pytest.LogCaptureFixture, via: str) -> None:
        configure_logging()
        self.e2e, self.caplog, self.via = e2e, caplog, via
        password = e2e.stack.webhook_password
        self.token = base64.b64encode(f"{WEBHOOK_USER}:{password}".encode()).decode()
        self.secrets = [password, self.token, e2e.host.admin_key]
        self.logged = 0

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Basic {self.token}"}

    async def depths(self) -> tuple[int, int]:
        queues = self.e2e.rt.queues
        return await queues.depth(queues.order_queue), await queues.depth(queues.master_queue)

    async def post(self, route: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, str]:
        if self.via == "http":
            if route != "pipedrive/webhook":
                headers = {**headers, "x-functions-key": self.e2e.host.admin_key}
            async with httpx.AsyncClient() as client:
                response = await client.post(f"{self.e2e.host.base_url}/api/{route}", content=body, headers=headers)
            status, text = response.status_code, response.text
        else:
            handler = app_function(ROUTES[route]).get_user_function()
            answer = await handler(func.HttpRequest(method="POST", url=f"/api/{route}", body=body, headers=headers))
            status, text = answer.status_code, answer.get_body().decode()
        assert status < 500, (status, text, body[:300])
        payload = json.loads(text)
        if status >= 400:
            assert isinstance(payload.get("error"), str) and payload["error"], text
        self.assert_no_secret(text)
        return status, payload, text

    def assert_no_secret(self, text: str) -> None:
        new_logs = self.caplog.records[self.logged :]
        self.logged = len(self.caplog.records)
        logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in new_logs)
        for secret in self.secrets:
            assert secret not in text, "a credential in the response"
            assert secret not in logged, "a credential in the log"


@pytest.fixture(params=["function_app", "http"])
def probe(request: pytest.FixtureRequest, e2e: E2E, caplog: pytest.LogCaptureFixture) -> Probe:
    caplog.set_level(logging.DEBUG)
    return Probe(e2e, caplog, request.param)


@given(body=st.one_of(*[inputs.hostile(base) for base in inputs.webhook_bases()]))
async def test_webhook_answers_every_input_and_queues_only_won_changes(probe: Probe, body: bytes) -> None:
    before = await probe.depths()
    _, payload, _ = await probe.post("pipedrive/webhook", body, probe.auth())
    after = await probe.depths()
    if after[0] > before[0]:
        assert inputs.may_queue_webhook(body), body[:300]
        assert payload == {"status": "queued", "deal_id": payload["deal_id"]}
    assert after[1] == before[1]


@given(won=inputs.valid_won_change())
async def test_a_valid_won_change_is_never_refused(probe: Probe, won: tuple[int, bytes]) -> None:
    deal, body = won
    status, payload, _ = await probe.post("pipedrive/webhook", body, probe.auth())
    assert status == 200 and payload["status"] in ("queued", "duplicate") and payload["deal_id"] == deal


@given(body=st.one_of(*[inputs.hostile(base) for base in inputs.event_bases()]))
async def test_d365_events_answer_every_input_and_queue_only_known_changes(probe: Probe, body: bytes) -> None:
    before = await probe.depths()
    await probe.post("d365/events", body, {})
    after = await probe.depths()
    assert after[1] - before[1] <= inputs.events_that_may_queue(body), body[:300]
    assert after[0] == before[0]


@given(body=st.one_of(*[inputs.hostile(base) for base in inputs.replay_bases()]))
async def test_replay_answers_every_input_and_queues_only_valid_requests(probe: Probe, body: bytes) -> None:
    before = await probe.depths()
    status, _, _ = await probe.post("admin/replay", body, {})
    after = await probe.depths()
    if after != before or status == 202:
        assert inputs.replay_may_queue(body), body[:300]


@given(
    cut=st.integers(min_value=0, max_value=60),
    junk=st.binary(min_size=1, max_size=3).filter(lambda b: b not in (b"\r", b"\n", b"\r\n")),
    name=st.sampled_from([b"Authorization", b"authorization ", b"X-Functions-Key", b"Authorization\t"]),
)
async def test_malformed_credential_headers_never_leak(
    e2e: E2E, caplog: pytest.LogCaptureFixture, cut: int, junk: bytes, name: bytes
) -> None:
    """Raw bytes on the socket (no client library cleans them): a credential header with junk spliced in."""
    caplog.set_level(logging.DEBUG)
    probe = Probe(e2e, caplog, "http")
    value = (
        b"Basic " + probe.token.encode() if name.lower().startswith(b"authorization") else e2e.host.admin_key.encode()
    )
    cut = min(cut, len(value))
    line = name + b": " + value[:cut] + junk + value[cut:]
    reader, writer = await asyncio.open_connection("127.0.0.1", e2e.host.port)
    writer.write(b"POST /api/admin/replay HTTP/1.1\r\nHost: x\r\n" + line + b"\r\nContent-Length: 2\r\n\r\n{}")
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    head, _, text = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert status < 500, answer[:300]
    probe.assert_no_secret(text.decode("utf-8", "replace"))
    for secret in probe.secrets:
        assert secret.encode() not in answer


@given(
    form=st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.tuples(st.sampled_from(["deal_id", "failed", "poison", "x"]), inputs.hostile_strings), max_size=15
        ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")),
    ),
    params=st.dictionaries(st.sampled_from(["deal", "msg", "doctor", "code"]), inputs.hostile_strings, max_size=4),
)
async def test_admin_page_routes_answer_every_input(e2e: E2E, form: bytes, params: dict[str, str]) -> None:
    """The admin page and its replay form (function key in Azure): never a 5xx, whatever the form or query."""
    before = await e2e.rt.queues.depth(e2e.rt.queues.order_queue)
    replay = app_function("admin_ui_replay").get_user_function()
    answer = await replay(func.HttpRequest(method="POST", url="/api/admin/ui/replay", body=form, params={"code": "k"}))
    assert answer.status_code in (303, 400), answer.get_body()[:300]
    page = app_function("admin_ui").get_user_function()
    shown = await page(func.HttpRequest(method="GET", url="/api/admin/ui", body=b"", params=params))
    assert shown.status_code < 500, shown.get_body()[:300]
    if await e2e.rt.queues.depth(e2e.rt.queues.order_queue) > before:
        assert b"deal_id=" in form
