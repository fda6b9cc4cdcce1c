"""Invariants 4 and 5 on a real webhook-driven build: Pipedrive only gets references (the customer
account on the organization, the order number on the deal), and no secret reaches a queue message,
a job row or the audit trail."""

from __future__ import annotations

import logging

import httpx
import pytest

from connector.dev.sandbox.demo_data import ACCOUNT_FIELD, ORDER_FIELD
from connector.dev.sandbox.stack import WEBHOOK_USER
from tests.fixtures.stack import E2E


async def test_only_references_go_to_pipedrive_and_no_secret_is_stored(e2e: E2E) -> None:
    await e2e.register_webhook()
    e2e.stack.pipedrive.set_deal_status(104, "won")
    await e2e.stack.pipedrive.wait_for_deliveries(1, ok_only=True)
    queue = await e2e.rt.queues.client(e2e.rt.queues.order_queue)
    messages = [str(m.content) for m in await queue.peek_messages(max_messages=32)]
    assert len(messages) == 1

    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    account = e2e.orders("PD-104")[0]["InvoiceCustomerAccountNumber"]

    writes = [
        (r["method"], r["path"], r["body"])
        for r in e2e.stack.pipedrive.requests()
        if r["method"] != "GET" and r["path"] != "/v1/webhooks"
    ]
    assert writes == [
        ("PATCH", "/api/v2/organizations/4", {"custom_fields": {ACCOUNT_FIELD: account}}),
        ("PATCH", "/api/v2/deals/104", {"custom_fields": {ORDER_FIELD: "PD104"}}),
    ]

    secrets = [e2e.stack.webhook_password, e2e.stack.pipedrive.api_token, e2e.stack.d365.client_secret]
    job = await e2e.job(104)
    stored = [
        *messages,
        job.model_dump_json() if job else "",
        *(t.model_dump_json() for t in await e2e.rt.state.audit.trail("deal-104")),
    ]
    for text in stored:
        for secret in secrets:
            assert secret not in text
    # The message carries ids only: no names, emails or amounts.
    assert "Northwind" not in messages[0] and "@" not in messages[0]


async def test_no_secret_in_logs_of_a_run_with_failures(e2e: E2E, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await e2e.register_webhook()
    e2e.stack.d365.inject_fault(status=500, html=True, count=1, path="/data/$batch")
    e2e.stack.pipedrive.set_deal_status(101, "won")
    e2e.stack.pipedrive.set_deal_status(108, "won")  # a permanent failure, logged
    await e2e.stack.pipedrive.wait_for_deliveries(2, ok_only=True)
    # A wrong password on the webhook endpoint is refused without echoing anything sent.
    async with httpx.AsyncClient() as client:
        refused = await client.post(e2e.webhook_url, content=b"{}", auth=(WEBHOOK_USER, "guess-" + "x" * 8))
    assert refused.status_code == 401
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"retry": 1, "created": 1, "failed": 1}

    secrets = [e2e.stack.webhook_password, e2e.stack.pipedrive.api_token, e2e.stack.d365.client_secret]
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    for secret in secrets:
        assert secret not in text
    assert "guess-xxxxxxxx" not in text + refused.text
    assert e2e.stack.d365.issuer.issued >= 1
    assert "eyJ" not in text and "Bearer " not in text  # no D365 access token (a JWT) either
