"""Invariant 6: bad input gets a 4xx with a clear JSON error and enqueues nothing, through the decorated
Azure Functions handlers and over HTTP; a malformed queue message is parked and audited, not retried."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
import httpx
import pytest

from connector.dev.sandbox.stack import WEBHOOK_USER
from connector.queues import OrderBuild, poison_name
from tests.fixtures.platform import app_function
from tests.fixtures.stack import E2E

# (name, body, use the right password, expected status, words the error must contain)
BAD: list[tuple[str, bytes, bool, int, str]] = [
    ("wrong password", b'{"meta": {}}', False, 401, ""),
    ("not json", b"{not json", True, 400, "json"),
    ("wrong shape", json.dumps({"hello": "world"}).encode(), True, 400, ""),
    ("json list", b"[1, 2, 3]", True, 400, ""),
    ("huge body", b'{"pad": "' + b"x" * 300_000 + b'"}', True, 413, "limit"),
]

Post = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, Any]]]


def auth(password: str) -> dict[str, str]:
    token = base64.b64encode(f"{WEBHOOK_USER}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


async def assert_nothing_queued(e2e: E2E) -> None:
    assert await e2e.queue_depth() == 0
    assert await e2e.rt.state.jobs.list("order") == []


@pytest.mark.parametrize("via", ["function_app", "http"])
async def test_bad_webhook_input_is_refused_with_a_clear_error(e2e: E2E, via: str) -> None:
    async def over_http(body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.post(e2e.webhook_url, content=body, headers=headers)
        return response.status_code, response.json()

    async def through_function_app(body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        handler = app_function("pipedrive_webhook").get_user_function()
        request = func.HttpRequest(method="POST", url="/api/pipedrive/webhook", body=body, headers=headers)
        response = await handler(request)
        return response.status_code, json.loads(response.get_body())

    post: Post = over_http if via == "http" else through_function_app
    for name, body, right_password, status, words in BAD:
        password = e2e.stack.webhook_password if right_password else "not-the-password"
        got, payload = await post(body, auth(password))
        assert got == status, (name, got, payload)
        assert isinstance(payload.get("error"), str) and payload["error"], (name, payload)
        assert words in payload["error"].lower(), (name, payload)
        assert e2e.stack.webhook_password not in json.dumps(payload)
    # No credentials at all is refused too.
    got, _ = await post(b"{}", {"Content-Type": "application/json"})
    assert got == 401
    await assert_nothing_queued(e2e)

    # A valid event is never rejected: a real v2 "deal won" payload, as the simulator sends it to a
    # subscriber that is down, is accepted by the same endpoint.
    pipedrive = await e2e.rt.pipedrive()
    await pipedrive.ensure_webhook("http://127.0.0.1:9/down", WEBHOOK_USER, "x", "change", "deal", "2.0")
    e2e.stack.pipedrive.set_deal_status(101, "won")
    deliveries = await e2e.stack.pipedrive.wait_for_deliveries(1)
    got, payload = await post(json.dumps(deliveries[0]["body"]).encode(), auth(e2e.stack.webhook_password))
    assert (got, payload.get("status")) == (200, "queued"), payload
    assert await e2e.queue_depth() == 1


async def test_queue_message_through_the_decorated_order_build_handler(e2e: E2E) -> None:
    handler = app_function("order_build").get_user_function()
    e2e.stack.pipedrive.set_deal_status(101, "won")
    message = OrderBuild(deal_id=101, reason="webhook", correlation_id="qm-1")
    await handler(func.QueueMessage(body=message.model_dump_json().encode()))
    orders = e2e.orders("PD-101")
    assert len(orders) == 1 and len(orders[0]["SalesOrderLines"]) == 2
    job = await e2e.job(101)
    assert job is not None and job.state == "done"

    # The same message delivered again (at-least-once) is acknowledged as a duplicate.
    await handler(func.QueueMessage(body=message.model_dump_json().encode()))
    assert len(e2e.orders("PD-101")) == 1
    assert "build.duplicate" in await e2e.events(101)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json at all", "not json"),
        (b'{"v": 9, "kind": "order.build", "deal_id": 1, "reason": "poll", "correlation_id": "x"}', "version"),
        (b'{"v": 1, "kind": "order.build", "deal_id": "abc", "reason": "poll", "correlation_id": "x"}', "deal_id"),
        (
            b'{"v": 1, "kind": "order.build", "deal_id": 1' + b"0" * 30 + b', "reason": "poll", "correlation_id": "x"}',
            "deal_id",
        ),
        (b'{"v": 1, "kind": "order.build", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "not json"),
    ],
)
async def test_malformed_queue_message_is_parked_and_audited_not_retried(e2e: E2E, body: bytes, words: str) -> None:
    handler = app_function("order_build").get_user_function()
    # Returning (not raising) is what tells the host not to retry it.
    assert await handler(func.QueueMessage(body=body)) is None
    parked = await e2e.rt.queues.peek_poison(e2e.rt.queues.order_queue)
    assert [p.text for p in parked] == [body.decode()]
    assert parked[0].error is not None and words in parked[0].error.lower()
    trail = await e2e.rt.state.audit.trail(f"queue-{e2e.rt.queues.order_queue}")
    assert [t.event for t in trail] == ["message.malformed"]
    assert words in trail[0].detail["error"].lower()
    assert await e2e.rt.state.jobs.list("order") == []
    assert e2e.d365_writes() == []
    assert poison_name(e2e.rt.queues.order_queue).endswith("-poison")


async def test_valid_events_that_are_not_a_win_are_accepted_and_ignored(e2e: E2E) -> None:
    pipedrive = await e2e.rt.pipedrive()
    await pipedrive.ensure_webhook("http://127.0.0.1:9/down", WEBHOOK_USER, "x", "change", "deal", "2.0")
    e2e.stack.pipedrive.change_deal(101, title="Contoso pump replacement (rev. 2)")
    deliveries = await e2e.stack.pipedrive.wait_for_deliveries(1)
    got = await app_function("pipedrive_webhook").get_user_function()(
        func.HttpRequest(
            method="POST",
            url="/api/pipedrive/webhook",
            body=json.dumps(deliveries[0]["body"]).encode(),
            headers=auth(e2e.stack.webhook_password),
        )
    )
    assert got.status_code == 200 and json.loads(got.get_body())["status"] == "ignored"
    await assert_nothing_queued(e2e)
    assert "webhook.ignored" in await e2e.events(101)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{oops", "not valid json"),
        (b"{}", "give deal_ids"),
        (b'{"deal_ids": ["abc"]}', "deal_ids"),
        (b'{"deal_ids": [1], "everything": true}', "everything"),
    ],
)
async def test_bad_admin_replay_request_is_a_400_and_queues_nothing(e2e: E2E, body: bytes, words: str) -> None:
    handler = app_function("admin_replay").get_user_function()
    response = await handler(func.HttpRequest(method="POST", url="/api/admin/replay", body=body, headers={}))
    assert response.status_code == 400
    assert words in json.loads(response.get_body())["error"].lower()
    await assert_nothing_queued(e2e)
