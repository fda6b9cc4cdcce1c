"""Lost answers: the write commits, the client never learns it (reset, gateway 502/504, stall, late commit)."""

from __future__ import annotations

import httpx
import pytest

from connector.dev.sandbox.d365 import D365Sandbox

from .test_batch import batch, changeset, op, statuses

CUSTOMER = {"OrganizationName": "Lost Answer Ltd", "CustomerGroupId": "10", "SalesCurrencyCode": "USD"}


def customers_named(sim: D365Sandbox, name: str) -> list[str]:
    return [c["CustomerAccount"] for c in sim.records("CustomersV3") if c["OrganizationName"] == name]


async def test_reset_after_commit_drops_the_connection_but_the_customer_exists(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    d365_sim.inject_fault(after_commit="reset", method="POST", path="/data/CustomersV3")
    with pytest.raises(httpx.TransportError):
        await api.post("CustomersV3", json=CUSTOMER)
    assert len(customers_named(d365_sim, "Lost Answer Ltd")) == 1
    [entry] = [r for r in d365_sim.requests() if r.path == "/data/CustomersV3"]
    assert (entry.status, entry.lost) == (201, "lost-reset")
    assert (await api.get("Currencies")).status_code == 200  # the next request is served normally
    assert d365_sim.faults.fired["lost-reset"] == 1


@pytest.mark.parametrize("status", ["502", "504"])
async def test_gateway_page_after_commit_on_a_header_create(
    d365_sim: D365Sandbox, api: httpx.AsyncClient, status: str
) -> None:
    d365_sim.inject_fault(after_commit=status, method="POST", path="SalesOrderHeadersV2")
    answer = await api.post(
        "SalesOrderHeadersV2", json={"OrderingCustomerAccountNumber": "US-001", "CustomersOrderReference": "PD-9"}
    )
    assert answer.status_code == int(status)
    assert answer.headers["Content-Type"].startswith("text/html")
    assert f"<title>{status} " in answer.text and "Application-Gateway" in answer.text
    assert [o["CustomersOrderReference"] for o in d365_sim.sales_orders()] == ["PD-9"]


async def test_whole_batch_commits_then_its_answer_is_a_gateway_timeout(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    d365_sim.set_number_sequences(manual_sales_order_numbers=True)
    d365_sim.inject_fault(after_commit="504", path="/data/$batch")
    body, headers = batch(
        [changeset([
            op("POST", "SalesOrderHeadersV2", {"SalesOrderNumber": "PD7", "OrderingCustomerAccountNumber": "US-001"}, 1),
            op("POST", "SalesOrderLines", {"SalesOrderNumber": "PD7", "ItemNumber": "D0001"}, 2),
            op("POST", "SalesOrderLines", {"SalesOrderNumber": "PD7", "ItemNumber": "P-100"}, 3),
        ])]
    )  # fmt: skip
    answer = await api.post("$batch", content=body, headers=headers)
    assert answer.status_code == 504 and "multipart" not in answer.headers["Content-Type"]
    assert [(o["SalesOrderNumber"], len(o["SalesOrderLines"])) for o in d365_sim.sales_orders()] == [("PD7", 2)]
    again = await api.post("$batch", content=body, headers=headers)  # a blind resend meets the natural key
    assert statuses(again) == [500] and "The record already exists" in again.text


async def test_stall_after_commit_outlasts_the_client_timeout(d365_sim: D365Sandbox, api: httpx.AsyncClient) -> None:
    d365_sim.inject_fault(after_commit="stall", stall=600, method="POST", path="/data/CustomersV3")
    with pytest.raises(httpx.ReadTimeout):
        await api.post("CustomersV3", json=CUSTOMER, timeout=1.0)
    assert len(customers_named(d365_sim, "Lost Answer Ltd")) == 1
    # stopping the sandbox ends the stall (the fixture's teardown would otherwise wait 600 s)


async def test_late_commit_lands_after_the_client_gave_up(d365_sim: D365Sandbox, api: httpx.AsyncClient) -> None:
    d365_sim.inject_fault(commit_delay=600, method="POST", path="/data/CustomersV3")
    with pytest.raises(httpx.ReadTimeout):
        await api.post("CustomersV3", json=CUSTOMER, timeout=0.5)
    assert customers_named(d365_sim, "Lost Answer Ltd") == []  # a lookup now finds nothing...
    assert d365_sim.pending_commits == 1
    async with httpx.AsyncClient(base_url=d365_sim.base_url, verify=d365_sim.ssl_context()) as control:
        listed = (await control.get("/_sandbox/faults")).json()
        assert listed["pending_commits"] == 1 and listed["fired"] == {"late-commit": 1}
        released = await control.post("/_sandbox/commits/release")
        assert released.json() == {"released": 1}
    assert len(customers_named(d365_sim, "Lost Answer Ltd")) == 1  # ...and the record appears later
    assert d365_sim.pending_commits == 0
    [entry] = [r for r in d365_sim.requests() if r.path == "/data/CustomersV3"]
    assert (entry.status, entry.lost) == (201, "late-commit")


async def test_lost_answer_faults_are_selected_by_method_and_path_and_set_over_http(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=d365_sim.base_url, verify=d365_sim.ssl_context()) as control:
        added = await control.post(
            "/_sandbox/faults", json={"after_commit": "502", "method": "POST", "path": "CustomersV3", "count": 2}
        )
        assert added.status_code == 200 and added.json()["after_commit"] == "502"
        conflicting = await control.post("/_sandbox/faults", json={"after_commit": "reset", "status": 500})
        assert conflicting.status_code == 400 and "exclude each other" in conflicting.json()["error"]
        in_part = await control.post("/_sandbox/faults", json={"commit_delay": 5, "where": "batch_part"})
        assert in_part.status_code == 400
    assert (await api.get("CustomersV3", params={"$top": "1"})).status_code == 200  # GET: not matched
    for name in ("First", "Second", "Third"):
        await api.post("CustomersV3", json={**CUSTOMER, "OrganizationName": name})
    posts = [r for r in d365_sim.requests() if r.method == "POST" and r.path == "/data/CustomersV3"]
    assert [(r.status, r.lost) for r in posts] == [(201, "lost-502"), (201, "lost-502"), (201, None)]
    assert all(customers_named(d365_sim, n) for n in ("First", "Second", "Third"))
