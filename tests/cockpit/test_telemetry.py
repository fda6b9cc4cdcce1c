"""Telemetry records through the real handlers: one per order build, master push, webhook and poll, with the
ids, outcome, duration and API calls (429s per API) an operator's KQL reads (docs/operations.md)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from connector import telemetry
from connector.dev.localhost import QueuePump
from connector.functions import traced
from tests.fixtures.stack import E2E


def records(caplog: pytest.LogCaptureFixture, op: str) -> list[dict[str, Any]]:
    found = [telemetry.parse(r.getMessage()) for r in caplog.records if r.name == "connector.telemetry"]
    return [r for r in found if r is not None and r["op"] == op]


async def test_an_order_build_is_one_record_with_calls_and_429s_per_api(
    e2e: E2E, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connector.telemetry")
    e2e.stack.pipedrive.inject_fault("/api/v2/deals/101", 429, headers={"Retry-After": "0"})
    await e2e.win(101, 108)
    await e2e.drain()

    builds = {r["deal_id"]: r for r in records(caplog, "order.build")}
    assert set(builds) == {101, 108}
    ok, bad = builds[101], builds[108]
    assert ok["outcome"] == "created" and ok["order_number"] == "PD101"
    assert ok["apis"]["pipedrive"]["throttled"] == 1 and ok["throttled"] == 1
    assert ok["apis"]["d365"]["calls"] >= 1 and ok["apis"]["d365"]["throttled"] == 0
    assert ok["api_calls"] == ok["apis"]["pipedrive"]["calls"] + ok["apis"]["d365"]["calls"]
    assert ok["duration_ms"] > 0 and ok["dequeue_count"] == 1
    assert bad["outcome"] == "failed" and "has no code" in bad["reason"]
    # Records carry ids and outcomes, never a credential.
    text = " ".join(r.getMessage() for r in caplog.records)
    assert e2e.stack.pipedrive.api_token not in text and e2e.stack.d365.client_secret not in text


async def test_webhook_poll_queue_sample_and_master_push_records(e2e: E2E, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connector.telemetry")
    await e2e.register_webhook()
    e2e.stack.pipedrive.set_deal_status(102, "won")
    await e2e.stack.pipedrive.wait_for_deliveries(1)
    hooks = records(caplog, "webhook")
    assert any(r.get("deal_id") == 102 and r["status"] == "queued" and r["outcome"] == "200" for r in hooks), hooks

    await traced.poll()
    (poll,) = records(caplog, "poll")
    assert poll["outcome"] == "ok" and poll["apis"]["pipedrive"]["calls"] >= 1
    (sample,) = records(caplog, "queues")
    assert sample["order_depth"] >= 1 and sample["order_poison_depth"] == 0 and "master_poison_depth" in sample

    await e2e.rt.queues.enqueue_master("product", "HP-1000", "usmf", reason="cli", correlation_id="t-1")
    await QueuePump.for_masters(e2e.rt, retry_after=0).drain()
    (push,) = records(caplog, "master.push")
    assert push["key"] == "HP-1000" and push["legal_entity"] == "usmf" and push["entity"] == "product"
    assert push["outcome"] in ("created", "updated", "adopted") and push["apis"]["pipedrive"]["calls"] >= 1


async def test_a_handler_that_raises_still_leaves_a_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connector.telemetry")
    with pytest.raises(RuntimeError):
        async with telemetry.operation("order.build", deal_id=7):
            raise RuntimeError("boom")
    (record,) = records(caplog, "order.build")
    assert record["outcome"] == "error" and record["error"] == "RuntimeError" and record["deal_id"] == 7
