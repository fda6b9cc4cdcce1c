"""D365 -> Pipedrive master push end to end: D365 business events over HTTP into the events route, the
master-push queue on Azurite drained by the real handler, both simulators. No sleeps: event deliveries
and queue drains are awaited as conditions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import azure.functions as func
import httpx
import pytest

from connector.dev.localhost import LocalHost, PumpStats, QueuePump
from connector.dev.sandbox.d365.events import envelope
from connector.dev.sandbox.demo_data import ACCOUNT_FIELD, PRODUCTS, UNMAPPED_CODE_FIX
from connector.flows.master_diff import master_diff
from connector.flows.masters import ORG_MAP, PRODUCT_MAP
from tests.fixtures.platform import app_function
from tests.fixtures.stack import E2E

FUNCTION_KEY = "test-function-key"
WRITES = ("POST", "PATCH", "PUT", "DELETE")
MasterEntity = Literal["product", "customer"]


@pytest.fixture
async def events_host(e2e: E2E) -> AsyncIterator[LocalHost]:
    """A second local host whose routes check a function key, like Azure's FUNCTION auth level."""
    host = LocalHost(e2e.rt, admin_key=FUNCTION_KEY)
    await host.start(workers=False)
    try:
        yield host
    finally:
        await host.stop()


def events_url(host: LocalHost, key: str = FUNCTION_KEY) -> str:
    return f"{host.base_url}/api/d365/events?code={key}"


async def activate(e2e: E2E, host: LocalHost) -> None:
    """Point D365's business events at the connector; F&O sends its test event on activation."""
    await e2e.stack.d365.set_event_endpoint(events_url(host))
    [test] = await e2e.stack.d365.wait_for_events(1)
    assert test.delivered and test.status == 200, test


async def d365_change(e2e: E2E, entity_set: str, key: dict[str, str], patch: dict[str, Any]) -> None:
    """Change a record in D365 over OData and wait until its business event was delivered."""
    before = len(e2e.stack.d365.events.deliveries)
    d365 = await e2e.rt.d365()
    await d365.update(entity_set, key, patch)
    deliveries = await e2e.stack.d365.wait_for_events(before + 1)
    assert deliveries[-1].delivered, deliveries[-1]


async def drain_masters(e2e: E2E, **kwargs: Any) -> PumpStats:
    return await QueuePump.for_masters(e2e.rt, retry_after=0, **kwargs).drain()


def products(e2e: E2E, code: str) -> list[dict[str, Any]]:
    return [p for p in e2e.stack.pipedrive.sim.store.visible("product") if p.get("code") == code]


def orgs(e2e: E2E, account: str) -> list[dict[str, Any]]:
    store = e2e.stack.pipedrive.sim.store
    return [o for o in store.visible("organization") if (o.get("custom_fields") or {}).get(ACCOUNT_FIELD) == account]


def pipedrive_writes(e2e: E2E) -> list[dict[str, Any]]:
    return [r for r in e2e.stack.pipedrive.requests() if r["method"] in WRITES]


def prices(product: dict[str, Any]) -> dict[str, float]:
    return {p["currency"]: float(p["price"]) for p in product["prices"]}


async def master_depth(e2e: E2E) -> int:
    return await e2e.rt.queues.depth(e2e.rt.queues.master_queue)


async def test_product_change_event_updates_the_product_and_a_new_item_is_created(
    e2e: E2E, events_host: LocalHost
) -> None:
    await activate(e2e, events_host)
    code, name, _unit, _usd, eur = PRODUCTS[0]
    [existing] = products(e2e, code)

    await d365_change(e2e, "ReleasedProductsV2", {"dataAreaId": "usmf", "ItemNumber": code}, {"SalesPrice": 1299.0})
    stats = await drain_masters(e2e)
    assert stats.outcomes == {"adopted": 1}  # found by code: the seeded product, not a second one
    [product] = products(e2e, code)
    assert product["id"] == existing["id"]
    assert prices(product) == {"USD": 1299.0, "EUR": eur}  # the other company's price is kept
    assert product["name"] == name and product["unit"] == "ea"
    entry = await e2e.rt.state.idmap.get(PRODUCT_MAP, f"usmf:{code}")
    assert entry is not None and entry.target_key == str(existing["id"])

    # Mapped now: the next change is a plain update of the same record.
    await d365_change(e2e, "ReleasedProductsV2", {"dataAreaId": "usmf", "ItemNumber": code}, {"SalesUnitSymbol": "pcs"})
    assert (await drain_masters(e2e)).outcomes == {"updated": 1}
    [product] = products(e2e, code)
    assert product["unit"] == "pcs" and prices(product)["USD"] == 1299.0

    # An item Pipedrive has no product for (by code) is created, with code = ItemNumber.
    assert products(e2e, UNMAPPED_CODE_FIX) == []
    key = {"dataAreaId": "demf", "ItemNumber": UNMAPPED_CODE_FIX}
    await d365_change(e2e, "ReleasedProductsV2", key, {"SalesPrice": 2900.0})
    assert (await drain_masters(e2e)).outcomes == {"created": 1}
    [created] = products(e2e, UNMAPPED_CODE_FIX)
    assert prices(created) == {"EUR": 2900.0}
    assert created["name"] == "Hydraulic pump, customer-specific"
    trail = [e.event for e in await e2e.rt.state.audit.trail(f"product-demf-{UNMAPPED_CODE_FIX}")]
    assert "enqueue.queued" in trail and "master.created" in trail and trail[-1] == "push.done"


async def test_customer_event_creates_the_organization_with_its_account_then_updates_it(
    e2e: E2E, events_host: LocalHost
) -> None:
    await activate(e2e, events_host)
    assert orgs(e2e, "DE-001") == []
    key = {"dataAreaId": "demf", "CustomerAccount": "DE-001"}

    await d365_change(e2e, "CustomersV3", key, {"AddressCity": "Berlin", "AddressZipCode": "10115"})
    assert (await drain_masters(e2e)).outcomes == {"created": 1}
    [org] = orgs(e2e, "DE-001")
    assert org["name"] == "Fabrikam Deutschland GmbH"
    assert "Berlin" in org["address"]["value"] and org["address"]["country"] == "Germany"

    await d365_change(e2e, "CustomersV3", key, {"OrganizationName": "Fabrikam Deutschland AG"})
    assert (await drain_masters(e2e)).outcomes == {"updated": 1}
    [renamed] = orgs(e2e, "DE-001")
    assert renamed["id"] == org["id"] and renamed["name"] == "Fabrikam Deutschland AG"

    # An organization that already carries its account is adopted, not duplicated.
    await d365_change(e2e, "CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "US-001"}, {"AddressCity": "LA"})
    assert (await drain_masters(e2e)).outcomes == {"adopted": 1}
    [adopted] = orgs(e2e, "US-001")
    assert adopted["id"] == 1 and "LA" in adopted["address"]["value"]
    entry = await e2e.rt.state.idmap.get(ORG_MAP, "usmf:US-001")
    assert entry is not None and entry.target_key == "1"


async def test_resync_with_nothing_changed_makes_only_paged_reads_and_zero_writes(e2e: E2E) -> None:
    first = await master_diff(await e2e.rt.diff_deps(), "all", reason="cli")
    # The diff pushes what it read: no message, no second D365 read of a record.
    assert first.enqueued == 0 and await master_depth(e2e) == 0
    assert {k: sum(v.values()) for k, v in first.pushed.items()} == first.changed
    assert first.pushed["customers"] == {"adopted": 1, "created": 2}  # US-001 carried its account already
    assert "adopted" in first.pushed["products"] and "created" in first.pushed["products"]
    d365_keyed = [r.path for r in e2e.stack.d365.requests() if "(" in r.path]
    assert d365_keyed == []

    e2e.stack.pipedrive.sim.log.clear()
    e2e.stack.d365.log.entries.clear()
    again = await master_diff(await e2e.rt.diff_deps(), "all", reason="cli")
    assert again.enqueued == 0 and again.changed == {}
    assert again.seen == first.seen
    assert await master_depth(e2e) == 0
    assert e2e.stack.pipedrive.requests() == []  # not even a read: hashes come from the id map
    d365 = [r for r in e2e.stack.d365.requests() if "/oauth2/" not in r.path]
    assert d365 and all(r.method == "GET" for r in d365)
    assert {r.path.rsplit("/", 1)[-1] for r in d365} == {
        "ReleasedProductsV2",
        "ReleasedProductCreationsV2",
        "CustomersV3",
    }

    # One real change -> exactly one push, of that record.
    d365_client = await e2e.rt.d365()
    await d365_client.update(
        "CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "US-002"}, {"AddressCity": "Salem"}
    )
    changed = await master_diff(await e2e.rt.diff_deps(), "all", reason="cli")
    assert changed.changed == {"customers": 1} and changed.pushed == {"customers": {"updated": 1}}
    assert changed.enqueued == 0


async def test_duplicate_event_makes_no_duplicate_record(e2e: E2E, events_host: LocalHost) -> None:
    event = envelope("CustomerChangedBusinessEvent", "usmf", 5637144999, {"CustomerAccount": "US-002"})
    async with httpx.AsyncClient() as client:
        answers = [(await client.post(events_url(events_host), json=event)).json() for _ in range(2)]
    assert [a["events"][0]["status"] for a in answers] == ["queued", "duplicate"]
    assert await master_depth(e2e) == 1
    assert (await drain_masters(e2e)).outcomes == {"created": 1}

    # A new event for the unchanged record re-opens the push, which then writes nothing.
    second = envelope("CustomerChangedBusinessEvent", "usmf", 5637145003, {"CustomerAccount": "US-002"})
    writes = len(pipedrive_writes(e2e))
    async with httpx.AsyncClient() as client:
        answer = (await client.post(events_url(events_host), json=[second, event])).json()
    assert [a["status"] for a in answer["events"]] == ["queued", "duplicate"]
    assert (await drain_masters(e2e)).outcomes == {"unchanged": 1}
    assert len(pipedrive_writes(e2e)) == writes
    assert len(orgs(e2e, "US-002")) == 1


async def test_test_event_is_accepted_and_audited(e2e: E2E, events_host: LocalHost) -> None:
    await activate(e2e, events_host)
    trail = await e2e.rt.state.audit.trail("d365-events")
    assert [entry.event for entry in trail] == ["event.test"]
    assert await master_depth(e2e) == 0


BAD_EVENTS: list[tuple[str, bytes, str]] = [
    ("not json", b"{nope", "json"),
    ("not an event", json.dumps({"hello": "world"}).encode(), "business event"),
    ("empty array", b"[]", "no events"),
    ("no EventId", json.dumps({"BusinessEventId": "X", "ControlNumber": 1}).encode(), "eventid"),
    (
        "product change without ItemNumber",
        json.dumps(envelope("ReleasedProductChangedBusinessEvent", "usmf", 7, {})).encode(),
        "itemnumber",
    ),
    (
        "one good event and one bad",
        json.dumps(
            [
                envelope("CustomerChangedBusinessEvent", "usmf", 8, {"CustomerAccount": "US-001"}),
                envelope("CustomerChangedBusinessEvent", "usmf", 9, {"CustomerAccount": 42}),
            ]
        ).encode(),
        "customeraccount",
    ),
]


@pytest.mark.parametrize("via", ["http", "function_app"])
async def test_bad_event_body_is_refused_and_nothing_is_enqueued(e2e: E2E, events_host: LocalHost, via: str) -> None:
    async def post(body: bytes) -> tuple[int, Any]:
        if via == "http":
            async with httpx.AsyncClient() as client:
                response = await client.post(events_url(events_host), content=body)
            return response.status_code, response.json()
        handler = app_function("d365_events").get_user_function()
        request = func.HttpRequest(method="POST", url="/api/d365/events", body=body, headers={})
        result = await handler(request)
        return result.status_code, json.loads(result.get_body())

    for name, body, words in BAD_EVENTS:
        status, payload = await post(body)
        assert status == 400, (name, status, payload)
        assert words in json.dumps(payload).lower(), (name, payload)
    assert await master_depth(e2e) == 0
    assert await e2e.rt.state.jobs.list("master-customer") == []
    assert await e2e.rt.state.jobs.list("master-product") == []


async def test_events_route_needs_the_function_key(e2e: E2E, events_host: LocalHost) -> None:
    event = envelope("CustomerChangedBusinessEvent", "usmf", 11, {"CustomerAccount": "US-001"})
    async with httpx.AsyncClient() as client:
        response = await client.post(events_url(events_host, key="wrong"), json=event)
    assert response.status_code == 401 and "key" in response.json()["error"]
    assert await master_depth(e2e) == 0


async def assert_one_mapped(e2e: E2E, entity: MasterEntity, key: str, legal_entity: str) -> None:
    """Pipedrive holds one record for the D365 key, and the id map points at it."""
    found = products(e2e, key) if entity == "product" else orgs(e2e, key)
    assert len(found) == 1, found
    map_kind = PRODUCT_MAP if entity == "product" else ORG_MAP
    entry = await e2e.rt.state.idmap.get(map_kind, f"{legal_entity}:{key}")
    assert entry is not None and entry.target_key == str(found[0]["id"])


@pytest.mark.parametrize(
    ("entity", "key", "legal_entity"),
    [("product", UNMAPPED_CODE_FIX, "usmf"), ("customer", "DE-001", "demf")],
)
async def test_crash_after_create_before_the_id_map_write_does_not_duplicate(
    e2e: E2E, entity: MasterEntity, key: str, legal_entity: str
) -> None:
    crashed: list[str] = []

    async def crash_once(step: str) -> None:
        if step == "after_create" and not crashed:
            crashed.append(step)
            raise RuntimeError("worker died after the Pipedrive create")

    assert await e2e.rt.queues.enqueue_master(entity, key, legal_entity, reason="cli", correlation_id="crash-test")
    stats = await drain_masters(e2e, checkpoint=crash_once)
    assert crashed == ["after_create"]
    assert stats.failed_attempts == 1 and stats.outcomes == {"adopted": 1}
    await assert_one_mapped(e2e, entity, key, legal_entity)


@pytest.mark.parametrize(
    ("entity", "key", "legal_entity", "path"),
    [
        ("product", UNMAPPED_CODE_FIX, "usmf", "/api/v2/products"),
        ("customer", "DE-001", "demf", "/api/v2/organizations"),
    ],
)
async def test_a_create_saved_but_answered_unreadably_is_looked_up_not_sent_again(
    e2e: E2E, entity: MasterEntity, key: str, legal_entity: str, path: str
) -> None:
    """Pipedrive saved the record but a proxy's page came back with a 200: the write may have happened,
    so the job retries by looking (it finds and adopts the record), never by creating a second one."""
    page = "<html>gateway maintenance</html>"
    e2e.stack.pipedrive.inject_fault(path, 200, body=page, method="POST", after=True)
    assert await e2e.rt.queues.enqueue_master(entity, key, legal_entity, reason="cli", correlation_id="garbled")
    stats = await drain_masters(e2e)
    assert stats.outcomes == {"retry": 1, "adopted": 1}  # the retry looks first and finds the saved record
    creates = [r for r in pipedrive_writes(e2e) if r["method"] == "POST" and r["path"] == path]
    assert [r["status"] for r in creates] == [200]  # one create, answered with the proxy's page
    await assert_one_mapped(e2e, entity, key, legal_entity)


async def test_a_record_missing_in_d365_is_audited_and_nothing_is_deleted(e2e: E2E) -> None:
    before = len(e2e.stack.pipedrive.sim.store.visible("product"))
    assert await e2e.rt.queues.enqueue_master("product", "NO-SUCH-ITEM", "usmf", reason="cli", correlation_id="t")
    assert (await drain_masters(e2e)).outcomes == {"not_found": 1}
    assert pipedrive_writes(e2e) == []
    assert len(e2e.stack.pipedrive.sim.store.visible("product")) == before
    job = await e2e.rt.state.jobs.get("master-product", "usmf:NO-SUCH-ITEM")
    assert job is not None and job.state == "done"


async def test_push_masters_from_the_command_line(e2e: E2E) -> None:
    from tests.e2e.test_cli import cli

    code, result, text = await cli(e2e, "push-masters", "--entity", "products", "--json")
    assert code == 0, text
    assert result["legal_entities"] == ["usmf", "demf"]
    assert result["seen"] == {"products": 22} and result["enqueued"] == 22 and "customers" not in result["seen"]
    assert pipedrive_writes(e2e) == []  # without --run nothing is pushed yet

    code, result, text = await cli(e2e, "push-masters", "--run", "--json")
    assert code == 0, text
    assert result["enqueued"] == 0  # --run pushes what the diff read, every change
    assert {kind: sum(o.values()) for kind, o in result["pushed"].items()} == {"products": 22, "customers": 3}
    assert result["outcomes"] == {"unchanged": 22} and result["poisoned"] == 0  # the earlier messages: no-ops
    assert len(products(e2e, UNMAPPED_CODE_FIX)) == 1

    code, result, text = await cli(e2e, "push-masters", "--run", "--json")
    assert code == 0, text
    assert result["enqueued"] == 0 and result["pushed"] == {} and result["outcomes"] == {}

    code, status, text = await cli(e2e, "status", "--json")
    assert code == 0, text
    assert status["master_queue_depth"] == 0 and status["master_poison_depth"] == 0 and status["master_failed"] == []

    code, _, text = await cli(e2e, "push-masters", "--entity", "orders")
    assert code == 2 and "products, customers or all" in text


async def test_events_of_other_kinds_or_companies_are_acknowledged_and_ignored(
    e2e: E2E, events_host: LocalHost
) -> None:
    batch = [
        envelope("SalesOrderConfirmedBusinessEvent", "usmf", 21, {"SalesOrderNumber": "SO-1"}),
        envelope("CustomerChangedBusinessEvent", "gbsi", 22, {"CustomerAccount": "GB-001"}),  # not in the mapping
    ]
    async with httpx.AsyncClient() as client:
        response = await client.post(events_url(events_host), json=batch)
    assert response.status_code == 200
    assert [e["status"] for e in response.json()["events"]] == ["ignored", "ignored"]
    assert await master_depth(e2e) == 0
    trail = await e2e.rt.state.audit.trail("d365-events")
    assert [entry.event for entry in trail] == ["event.ignored", "event.ignored"]


async def test_local_runner_pushes_a_d365_change_by_itself(e2e: E2E) -> None:
    recorded = asyncio.Event()

    async def on_step(step: str) -> None:
        if step == "recorded":
            recorded.set()

    host = LocalHost(e2e.rt, pump_idle=0.05, admin_key=FUNCTION_KEY)
    host.master_pump.checkpoint = on_step
    async with host:
        await activate(e2e, host)
        code = PRODUCTS[2][0]
        await d365_change(e2e, "ReleasedProductsV2", {"dataAreaId": "usmf", "ItemNumber": code}, {"SalesPrice": 199.0})
        await asyncio.wait_for(recorded.wait(), 15)
    assert host.master_pump.stats.outcomes == {"adopted": 1}
    assert prices(products(e2e, code)[0])["USD"] == 199.0
    assert await master_depth(e2e) == 0


async def test_one_item_in_two_companies_pushed_at_once_is_one_product_with_both_prices(e2e: E2E) -> None:
    for le in ("usmf", "demf"):
        assert await e2e.rt.queues.enqueue_master("product", UNMAPPED_CODE_FIX, le, reason="cli", correlation_id=le)
    stats = await drain_masters(e2e)  # one batch, processed concurrently
    assert stats.outcomes == {"created": 1, "adopted": 1}
    [product] = products(e2e, UNMAPPED_CODE_FIX)
    assert prices(product) == {"USD": 3100.0, "EUR": 2850.0}

    # Both mapped now: concurrent price updates read-merge-write one price array without losing either.
    d365 = await e2e.rt.d365()
    for le, price in (("usmf", 3200.0), ("demf", 2950.0)):
        await d365.update(
            "ReleasedProductsV2", {"dataAreaId": le, "ItemNumber": UNMAPPED_CODE_FIX}, {"SalesPrice": price}
        )
        assert await e2e.rt.queues.enqueue_master("product", UNMAPPED_CODE_FIX, le, reason="cli", correlation_id=le)
    assert (await drain_masters(e2e)).outcomes == {"updated": 2}
    [product] = products(e2e, UNMAPPED_CODE_FIX)
    assert prices(product) == {"USD": 3200.0, "EUR": 2950.0}
