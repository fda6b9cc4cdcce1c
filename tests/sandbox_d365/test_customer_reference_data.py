"""CustomersV3 on the simulator: address state/county must be reference-data ids, and the customer-account
number sequence is automatic, manual or either (the connector is tested against each)."""

from __future__ import annotations

import httpx
import pytest

from connector.dev.sandbox.d365 import D365Sandbox

from .test_writes import infolog

BASE = {"OrganizationName": "Tallinna Pumbad OÜ", "CustomerGroupId": "10", "SalesCurrencyCode": "USD"}


async def test_free_text_state_is_refused_and_a_state_id_is_taken(api: httpx.AsyncClient) -> None:
    text = await api.post(
        "CustomersV3", json={**BASE, "AddressCountryRegionId": "EST", "AddressState": "Harju maakond"}
    )
    assert text.status_code == 400
    assert infolog(text) == (
        "Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: The value 'Harju maakond' in "
        "field 'State' is not found in the related table 'Address state'.; Warning: validateField failed on field "
        "'CustCustomerV3Entity.AddressState'."
    )
    ok = await api.post("CustomersV3", json={**BASE, "AddressCountryRegionId": "EST", "AddressState": "HARJU"})
    assert ok.status_code == 201 and ok.json()["AddressState"] == "HARJU"
    county = await api.post("CustomersV3", json={**BASE, "AddressCountryRegionId": "USA", "AddressCounty": "Queens"})
    assert "The value 'Queens' in field 'County'" in infolog(county)


@pytest.mark.parametrize(
    ("mode", "account", "status", "text"),
    [
        ("automatic", None, 201, ""),
        ("automatic", "PD-30", 400, "The number sequence does not allow manual numbers."),
        ("manual", "PD-30", 201, ""),
        ("manual", None, 400, "Field 'Customer account' must be filled in."),
        ("any", "PD-30", 201, ""),
        ("any", None, 201, ""),
    ],
)
async def test_customer_account_number_sequence_modes(
    d365_sim: D365Sandbox, api: httpx.AsyncClient, mode: str, account: str | None, status: int, text: str
) -> None:
    d365_sim.options.customer_accounts = mode  # type: ignore[assignment]
    body = {**BASE, **({"CustomerAccount": account} if account else {})}
    response = await api.post("CustomersV3", json=body)
    assert response.status_code == status
    if text:
        assert text in infolog(response)
    elif account:
        assert response.json()["CustomerAccount"] == account
