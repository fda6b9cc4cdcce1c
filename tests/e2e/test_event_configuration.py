"""Business events as customers configure them, and D365 data events, over the real events route.

Payloads are real shapes (some read at run time from the shared research folder's `d365/samples/`,
tests/fixtures/reference.py): the custom `FFYCustomerChangedBusinessEvent` (account in
`Account`), the activation test event, and a captured F&O 10.0.48 data event (RemoteExecutionContext).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.dev.localhost import LocalHost
from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.stack import DEMO_MAPPING
from tests.e2e.test_masters import FUNCTION_KEY, drain_masters, events_url, orgs
from tests.fixtures.reference import D365_REFERENCE as REF
from tests.fixtures.stack import E2E, open_e2e

FFY_CUSTOMER_CHANGED: dict[str, Any] = {
    "Account": "6043", "BusinessEventId": "FFYCustomerChangedBusinessEvent", "BusinessEventLegalEntity": "0031",
    "CommissionSalesGroupId": "", "Contact": {"Email": "", "Mobile": "", "Person": None, "Phone": "",
    "PostalAddress": {"City": "New York", "CountryId": "USA", "CountryIso2": "US", "CountryName": "United States",
    "StateId": "NY", "StateName": "New York", "Street": "1000 Third Avenue", "StreetNumber": "", "ZipCode": "10022"}},
    "ContextRecordSubject": "", "ControlNumber": 5637985363, "EventId": "9C091AF1-5BAF-4CA9-B0A4-94D6E59A0D1C",
    "EventTime": "/Date(1697470966000)/", "EventTimeIso8601": "2023-10-16T15:42:46.3440655Z",
    "ExternalReferences": [{"ExternalId": "Bloomingdales", "SystemId": "Spring"}],
    "InitiatingUserAADObjectId": "{C600136F-6814-41D9-8642-40CA0EC4EDD4}", "InterCompanyDirectDelivery": "Yes",
    "LegalEntity": "0031", "MajorVersion": 0, "MinorVersion": 0, "Name": "Bloomingdale's 0001-NY",
    "ParentContextRecordSubjects": [], "WarehouseId": "3199-DD",
}  # fmt: skip
DATA_EVENT_GROUP: dict[str, Any] = {
    "CorrelationId": "844bbf91-d451-4cad-a83d-1fea5f32ebaf",
    "InitiatingUserAzureActiveDirectoryObjectId": "e3a96d5d-8187-498c-88e7-4448cc8e57fa",
    "MessageName": "OnExternalCreated", "OperationCreatedOn": "/Date(1784051293000+0000)/",
    "PrimaryEntityId": "00000000-0000-0000-0000-000000000000", "PrimaryEntityName": "mserp_custcustomergroupentity",
    "InputParameters": [{"key": "Target", "value": {"__type": "Entity:http://schemas.microsoft.com/xrm/2011/Contracts",
        "Attributes": [{"key": "mserp_customergroupid", "value": "Default"},
                       {"key": "mserp_issalestaxincludedinprice", "value": {
                           "__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts", "Value": 200000000}},
                       {"key": "mserp_dataareaid", "value": "alas"}],
        "Id": "00004951-0000-0000-5e1a-005001000000", "LogicalName": "mserp_custcustomergroupentity"}}],
}  # fmt: skip


def data_event(entity: str, attributes: dict[str, str], message: str = "OnExternalUpdated") -> dict[str, Any]:
    """The captured shape, for another entity and its attributes."""
    event = copy.deepcopy(DATA_EVENT_GROUP)
    event.update(MessageName=message, PrimaryEntityName=entity, CorrelationId=f"{entity}-{sorted(attributes.items())}")
    target = event["InputParameters"][0]["value"]
    target.update(LogicalName=entity, Attributes=[{"key": k, "value": v} for k, v in attributes.items()])
    return event


@pytest.fixture
async def custom(azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[tuple[E2E, str]]:
    mapping = yaml.safe_load(DEMO_MAPPING.read_text())
    mapping["events"] = {"customer_changed": {"ids": ["FFYCustomerChangedBusinessEvent"], "key_field": "Account"}}
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(mapping))
    async with open_e2e(azurite, monkeypatch, mapping_file=path) as e2e:
        host = LocalHost(e2e.rt, admin_key=FUNCTION_KEY)
        await host.start(workers=False)
        try:
            yield e2e, events_url(host)
        finally:
            await host.stop()


async def post(url: str, body: object) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=json.dumps(body).encode())


async def test_custom_event_id_and_key_field_from_the_mapping_push_the_customer(custom: tuple[E2E, str]) -> None:
    e2e, url = custom
    event = {**FFY_CUSTOMER_CHANGED, "Account": "US-002", "BusinessEventLegalEntity": "usmf"}
    answer = await post(url, event)
    assert answer.status_code == 200
    assert answer.json()["events"] == [{"event_id": "9C091AF1-5BAF-4CA9-B0A4-94D6E59A0D1C", "status": "queued"}]
    assert (await drain_masters(e2e)).outcomes == {"created": 1}
    [org] = orgs(e2e, "US-002")
    assert org["name"] == "O'Brien & Sons"
    # The default id is no longer configured: acknowledged, not acted on.
    default = {
        **event,
        "BusinessEventId": "CustomerChangedBusinessEvent",
        "EventId": "1" * 32,
        "CustomerAccount": "US-001",
    }
    assert (await post(url, default)).json()["events"][0]["status"] == "ignored"
    # The real sample as sent: company 0031 is not synced by this mapping, so it is acknowledged and ignored.
    assert (await post(url, FFY_CUSTOMER_CHANGED)).json()["events"][0]["status"] == "ignored"
    # The configured event without its key field is refused, naming the field.
    missing = {k: v for k, v in event.items() if k != "Account"} | {"EventId": "2" * 32}
    refused = await post(url, missing)
    assert refused.status_code == 400 and "Account" in refused.text


@pytest.mark.parametrize(
    "test_event",
    [
        {
            "BusinessEventId": "BusinessEventsTestEndpointContract",
            "BusinessEventLegalEntity": "001",
            "ControlNumber": -9223372036854775808,
            "EventId": "8D1220EB-E514-4E35-844E-E062DEF0C05D",
        },
        {"BusinessEventId": "BusinessEventsTestEndpointContract"},  # nothing else
        {"BusinessEventId": "BusinessEventsTestEndpointContract", "ControlNumber": "0", "EventId": 7, "EventTime": "x"},
    ],
)
async def test_activation_test_event_is_recognised_before_any_other_check(
    custom: tuple[E2E, str], test_event: dict[str, Any]
) -> None:
    e2e, url = custom
    answer = await post(url, test_event)
    assert answer.status_code == 200 and answer.json()["events"][0]["status"] == "test"
    assert [t.event for t in await e2e.rt.state.audit.trail("d365-events")] == ["event.test"]


async def test_data_events_of_customers_and_products_push_and_others_are_answered(custom: tuple[E2E, str]) -> None:
    e2e, url = custom
    customer = data_event("mserp_custcustomerv3entity", {"mserp_customeraccount": "US-002", "mserp_dataareaid": "usmf"})
    product = data_event("mserp_ecoresreleasedproductv2entity", {"mserp_itemnumber": "HP-1000-C", "mserp_dataareaid": "demf"},
                         message="OnExternalCreated")  # fmt: skip
    answer = await post(url, [customer, product, customer])
    assert answer.status_code == 200
    statuses = [e["status"] for e in answer.json()["events"]]
    # The two deliveries of the same customer are sent concurrently: either one may be the duplicate.
    assert statuses[1] == "queued" and sorted(statuses[::2]) == ["duplicate", "queued"], statuses
    assert (await drain_masters(e2e)).outcomes == {"created": 2}
    assert len(orgs(e2e, "US-002")) == 1

    # The captured real data event (customer groups) and deletes are acknowledged, not acted on.
    deleted = data_event("mserp_custcustomerv3entity", {"mserp_customeraccount": "US-001", "mserp_dataareaid": "usmf"},
                         message="OnExternalDeleted")  # fmt: skip
    statuses = [e["status"] for e in (await post(url, [DATA_EVENT_GROUP, deleted])).json()["events"]]
    assert statuses == ["ignored", "ignored"]

    # An update whose Target holds only the changed fields cannot say which record: 400 with the way out.
    partial = data_event("mserp_custcustomerv3entity", {"mserp_addresscity": "Salem", "mserp_dataareaid": "usmf"})
    refused = await post(url, partial)
    assert refused.status_code == 400
    assert "without mserp_customeraccount" in refused.text and "configure a business event" in refused.text


def test_reference_samples_are_the_shapes_used_here() -> None:
    samples = REF / "samples" / "business-and-data-event-payload-samples.json"
    if not samples.is_file():
        pytest.skip("reference samples not present")
    data = json.loads(samples.read_text())
    assert data["business_event_custom_customer_changed"]["payload"] == FFY_CUSTOMER_CHANGED
    assert data["data_event_real_capture_customer_group_create"]["payload"] == DATA_EVENT_GROUP
