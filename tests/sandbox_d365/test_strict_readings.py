"""Where the simulator must refuse like F&O (or, where F&O is UNCONFIRMED, refuse at all): each case fails
if the simulator became kind again. The client's own requests pass these rules in tests/d365."""

from __future__ import annotations

import json

import httpx
import pytest

from connector.dev.sandbox.d365 import D365Sandbox

from .test_batch import batch, changeset, statuses


def _error_message(response: httpx.Response) -> str:
    body = response.json()
    return str(body["error"]["message"] if "error" in body else body["Message"])


@pytest.mark.parametrize(
    ("entity_set", "clause", "types"),
    [
        ("CustomersV3", "CreditLimit eq '5000'", "'Edm.Decimal' and 'Edm.String'"),
        ("CustomersV3", "CustomerAccount eq 1", "'Edm.String' and 'Edm.Int32'"),
        ("CustomersV3", "PersonAnniversaryYear eq 1.5", "'Edm.Int32' and 'Edm.Decimal'"),
        ("SalesOrderHeadersV2", "RequestedShippingDate ge '2026-01-01T00:00:00Z'", "'Edm.DateTimeOffset' and 'Edm.String'"),
        ("CustomersV3", "CustomerAccount eq true", "'Edm.String' and 'Edm.Boolean'"),
    ],
)  # fmt: skip
async def test_filter_literals_must_have_the_property_type(
    api: httpx.AsyncClient, entity_set: str, clause: str, types: str
) -> None:
    """ODataLib binds literal types to the property before reading a row; no quoted dates or numbers."""
    response = await api.get(entity_set, params={"$filter": clause})
    assert response.status_code == 400
    message = _error_message(response)
    assert "incompatible types" in message and types in message


async def test_filter_literals_of_the_right_type_are_accepted(api: httpx.AsyncClient) -> None:
    for entity_set, clause in [
        ("CustomersV3", "CreditLimit ge 0 and CustomerAccount eq 'US-001'"),
        ("SalesOrderHeadersV2", "RequestedShippingDate ge 2020-01-01T00:00:00Z"),
    ]:
        response = await api.get(entity_set, params={"$filter": clause})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_write_body_that_is_not_declared_json_is_refused(
    d365_sim: D365Sandbox, api: httpx.AsyncClient, content_type: str | None
) -> None:
    body = json.dumps({"dataAreaId": "usmf", "CustomerGroupId": "88", "Description": "x"}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    created = await api.post("CustomerGroups", content=body, headers=headers)
    patched = await api.patch(
        "CustomerGroups(dataAreaId='usmf',CustomerGroupId='10')", content=b'{"Description": "y"}', headers=headers
    )
    for response in (created, patched):
        assert response.status_code == 415
        assert "media type" in response.json()["Message"]
    groups = {g["CustomerGroupId"]: g["Description"] for g in d365_sim.records("CustomerGroups")}
    assert "88" not in groups and groups["10"] != "y"
    # Declared JSON (with OData's media type parameters) is taken.
    ok = await api.post(
        "CustomerGroups", content=body, headers={"Content-Type": "application/json;odata.metadata=minimal"}
    )
    assert ok.status_code == 201


def _part(method: str, url: str, body: dict[str, object], content_id: str | None) -> str:
    cid = f"Content-ID: {content_id}\r\n" if content_id is not None else ""
    return (
        f"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n{cid}\r\n"
        f"{method} {url} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{json.dumps(body)}\r\n"
    )


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ((None, "2"), "The header with name 'Content-ID' was not present"),
        (("1", "1"), "The content ID '1' was found more than once in the same change set"),
    ],
)
async def test_changeset_operations_need_unique_content_ids(
    d365_sim: D365Sandbox, api: httpx.AsyncClient, ids: tuple[str | None, str | None], message: str
) -> None:
    """ODataLib's batch reader refuses the whole batch (nothing runs) when a changeset part lacks a
    Content-ID or repeats one (OData/odata.net ODataBatchReader)."""
    parts = [
        _part("POST", "CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": f"G{i}"}, cid)
        for i, cid in enumerate(ids)
    ]
    body, headers = batch([changeset(parts)])
    response = await api.post("$batch", content=body, headers=headers)
    assert response.status_code == 400
    assert message in _error_message(response)
    assert not {"G0", "G1"} & {g["CustomerGroupId"] for g in d365_sim.records("CustomerGroups")}


async def test_a_changeset_operation_for_another_service_fails_the_changeset(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    parts = [
        _part("POST", f"{d365_sim.data_url}/CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "H1"}, "1"),
        _part("POST", "https://elsewhere.example/data/CustomerGroups", {"CustomerGroupId": "H2"}, "2"),
    ]
    body, headers = batch([changeset(parts)])
    response = await api.post("$batch", content=body, headers=headers)
    assert response.status_code == 200 and statuses(response) == [400]
    assert "is not based on" in response.text
    assert not {"H1", "H2"} & {g["CustomerGroupId"] for g in d365_sim.records("CustomerGroups")}


async def test_properties_the_metadata_marks_not_editable_are_refused(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    """CustomerV3 `$metadata` annotates RecordIds, PaymentBankAccount... AllowEditOnCreate=false and
    PartyNumber AllowEdit=false (reference CustomerV3.metadata-excerpt.xml)."""
    new = {"dataAreaId": "usmf", "OrganizationName": "Edit Rules Oy", "CustomerGroupId": "10",
           "SalesCurrencyCode": "USD"}  # fmt: skip
    refused = await api.post("CustomersV3", json={**new, "PrimaryContactEmailRecordId": 5637144999})
    assert refused.status_code == 400 and "'PrimaryContactEmailRecordId'" in _error_message(refused)
    key = "CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"
    patched = await api.patch(key, json={"PartyNumber": "000000999"})
    assert patched.status_code == 400 and "'PartyNumber'" in _error_message(patched)
    assert all(c["OrganizationName"] != "Edit Rules Oy" for c in d365_sim.records("CustomersV3"))
    # PartyNumber may be given on create (AllowEditOnCreate is not false).
    created = await api.post("CustomersV3", json={**new, "PartyNumber": "000000777"})
    assert created.status_code == 201 and created.json()["PartyNumber"] == "000000777"
