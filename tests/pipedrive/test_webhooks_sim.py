"""Webhooks end to end: registration on the simulator, real deliveries to a loopback receiver that
verifies and parses them with our functions; custom-field round trip through names and labels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from connector.dev.sandbox.pipedrive.sandbox import PipedriveSandbox
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.errors import WebhookAuthError, WebhookPayloadError
from connector.pipedrive.fields import CustomFields
from connector.pipedrive.models import WebhookEvent
from connector.pipedrive.webhooks import parse_webhook, verify_request

from .conftest import ORDER_NO, REGION, TAGS

USER = "pipedrive-hook"
PASSWORD = "hook-password-1"


@dataclass
class Receiver:
    url: str = ""
    events: dict[str, list[WebhookEvent]] = field(default_factory=dict)
    rejected: list[int] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook endpoint as the product has it: verify Basic auth, parse, 401/400 otherwise."""
    state = Receiver()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify_request(request.headers, body, user=USER, password=PASSWORD)
            event = parse_webhook(body)
        except WebhookAuthError:
            state.rejected.append(401)
            return web.json_response({"error": "unauthorized"}, status=401)
        except WebhookPayloadError as exc:
            state.rejected.append(400)
            return web.json_response({"error": str(exc)}, status=400)
        state.events.setdefault(request.match_info["name"], []).append(event)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook/{name}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hook"
    yield state
    await runner.cleanup()


async def test_registering_twice_leaves_one_webhook(client: PipedriveClient, receiver: Receiver) -> None:
    url = f"{receiver.url}/v2"
    first = await client.ensure_webhook(url, USER, PASSWORD, "change", "deal", "2.0")
    second = await client.ensure_webhook(url, USER, PASSWORD, "change", "deal", "2.0")
    assert first.id == second.id
    assert [h.id for h in await client.list_webhooks()] == [first.id]
    # Same target with other settings: replaced, never doubled.
    third = await client.ensure_webhook(url, USER, PASSWORD, "change", "deal", "1.0")
    hooks = await client.list_webhooks()
    assert [(h.id, h.version) for h in hooks] == [(third.id, "1.0")] and third.id != first.id


async def test_v2_and_v1_deal_won_deliveries_parse_to_the_same_event(
    pd: PipedriveSandbox, client: PipedriveClient, receiver: Receiver
) -> None:
    await client.ensure_webhook(f"{receiver.url}/v2", USER, PASSWORD, "change", "deal", "2.0")
    await client.ensure_webhook(f"{receiver.url}/v1", USER, PASSWORD, "change", "deal", "1.0")
    pd.set_deal_status(200, "won")
    await pd.wait_for_deliveries(2, ok_only=True)
    [v2] = receiver.events["v2"]
    [v1] = receiver.events["v1"]
    assert (v2.version, v1.version) == ("2.0", "1.0")
    same = ("entity", "action", "id", "status", "previous_status", "attempt")
    assert {k: getattr(v2, k) for k in same} == {k: getattr(v1, k) for k in same}
    assert (v2.entity, v2.action, v2.id, v2.status, v2.previous_status) == ("deal", "change", 200, "won", "open")
    assert v2.became_won and v1.became_won
    assert abs((v2.timestamp - v1.timestamp).total_seconds()) < 2  # v1 has whole seconds only
    assert v2.event_id and v2.correlation_id


async def test_wrong_basic_credentials_are_rejected(
    pd: PipedriveSandbox, client: PipedriveClient, receiver: Receiver
) -> None:
    await client.ensure_webhook(f"{receiver.url}/v2", USER, "not-the-password", "change", "deal", "2.0")
    pd.set_deal_status(200, "won")
    deliveries = await pd.wait_for_deliveries(4)  # first try + 3 documented retries, all refused
    assert [d["status"] for d in deliveries] == [401, 401, 401, 401]
    assert receiver.events == {} and receiver.rejected == [401] * 4


async def test_custom_fields_round_trip_through_names_and_labels(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    resolver = CustomFields.for_client(client, "deal", names={"region": "Region", "order_number": ORDER_NO})
    body = await resolver.to_hashes({"region": "South", "Tags": ["VIP", "Export"], "order_number": "SO-7"})
    assert body == {REGION: 11, TAGS: [20, 21], ORDER_NO: "SO-7"}  # hash keys verbatim, option ids
    deal = await client.update_deal_fields(100, body)
    assert deal.custom_fields[REGION] == 11
    named = await resolver.to_names((await client.get_deal(100)).custom_fields)
    assert {k: named[k] for k in ("region", "Tags", "order_number")} == {
        "region": "South",
        "Tags": ["VIP", "Export"],
        "order_number": "SO-7",
    }
    assert resolver.loads == 1  # cached: one definitions read for all of that
    field_calls = [e for e in pd.requests() if e["path"] == "/api/v2/dealFields"]
    assert len(field_calls) == 1


async def test_field_added_later_is_found_by_refreshing(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    resolver = CustomFields.for_client(client, "deal")
    await resolver.to_names({})
    new_code = "5" * 40
    pd.seed({"fields": {"deal": [{"field_name": "Incoterm", "field_type": "varchar", "field_code": new_code}]}})
    assert await resolver.code_for("Incoterm") == new_code
    assert resolver.loads == 2
