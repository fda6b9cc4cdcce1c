"""$batch: atomic changesets, the refused Content-ID reference, 429 inside a part, malformed bodies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from connector.dev.sandbox.d365 import D365Sandbox
from connector.dev.sandbox.d365.seed import default_seed
from connector.dev.sandbox.stack import DEMO_MAPPING, ROOT, from_deal_mapping, numbers_from_deal


def op(method: str, url: str, body: dict[str, object] | None, content_id: int) -> str:
    payload = json.dumps(body) if body is not None else ""
    return (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        f"Content-ID: {content_id}\r\n\r\n"
        f"{method} {url} HTTP/1.1\r\nOData-Version: 4.0\r\nOData-MaxVersion: 4.0\r\n"
        "Content-Type: application/json;odata.metadata=minimal;charset=UTF-8\r\n\r\n"
        f"{payload}\r\n"
    )


def changeset(ops: list[str], boundary: str = "changeset_1") -> str:
    inner = "".join(f"--{boundary}\r\n{o}" for o in ops) + f"--{boundary}--\r\n"
    return f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{inner}"


def batch(parts: list[str], boundary: str = "batch_1") -> tuple[bytes, dict[str, str]]:
    body = "".join(f"--{boundary}\r\n{p}" for p in parts) + f"--{boundary}--\r\n"
    return body.encode(), {"Content-Type": f"multipart/mixed; boundary={boundary}"}


def statuses(response: httpx.Response) -> list[int]:
    return [int(s) for s in re.findall(r"^HTTP/1\.1 (\d{3})", response.text, re.M)]


def part_error(response: httpx.Response) -> dict[str, object]:
    """The OData error of the (single) failed part."""
    return dict(json.loads(response.text[response.text.index('{"error"') :].split("\r\n")[0])["error"])


@pytest.fixture
def manual_numbers(d365_sim: D365Sandbox) -> D365Sandbox:
    """The sales order number sequence takes caller-made numbers (the `from_deal` setup)."""
    d365_sim.set_number_sequences(manual_sales_order_numbers=True)
    return d365_sim


async def test_changeset_creates_header_and_lines_atomically(
    manual_numbers: D365Sandbox, api: httpx.AsyncClient
) -> None:
    url = f"{manual_numbers.data_url}/SalesOrderHeadersV2"
    header = {"dataAreaId": "usmf", "SalesOrderNumber": "SO-DEAL-7", "OrderingCustomerAccountNumber": "US-002",
              "CustomersOrderReference": "deal-7"}  # fmt: skip
    body, headers = batch(
        [changeset([
            op("POST", url, header, 1),
            op("POST", "SalesOrderLines", {"dataAreaId": "usmf", "SalesOrderNumber": "SO-DEAL-7", "ItemNumber": "D0001"}, 2),
            op("POST", "SalesOrderLines", {"SalesOrderNumber": "SO-DEAL-7", "ItemNumber": "P-100", "OrderedSalesQuantity": 5}, 3),
        ])]
    )  # fmt: skip
    response = await api.post("$batch", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert statuses(response) == [201, 201, 201]
    assert "Content-ID: 3" in response.text
    orders = manual_numbers.sales_orders()
    assert [(o["SalesOrderNumber"], len(o["SalesOrderLines"])) for o in orders] == [("SO-DEAL-7", 2)]
    assert [ln["LineNumber"] for ln in orders[0]["SalesOrderLines"]] == [1, 2]
    assert sum(1 for r in manual_numbers.requests() if r.in_batch) == 3


async def test_content_id_reference_is_refused_and_nothing_is_written(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    """Strict reading of reference section 4: `$1/SalesOrderLines` fails the whole changeset."""
    body, headers = batch(
        [changeset([
            op("POST", "SalesOrderHeadersV2", {"OrderingCustomerAccountNumber": "US-001"}, 1),
            op("POST", "$1/SalesOrderLines", {"ItemNumber": "D0001"}, 2),
        ])]
    )  # fmt: skip
    response = await api.post("$batch", content=body, headers=headers)
    assert response.status_code == 200
    assert statuses(response) == [400]
    assert "Content-ID: 2" in response.text
    error = part_error(response)
    assert error["code"] == ""
    assert "refers to Content-ID '1'" in str(error["message"]) and "not supported" in str(error["message"])
    assert dict(error["innererror"])["type"] == "Microsoft.OData.ODataException"  # type: ignore[call-overload]
    assert d365_sim.sales_orders() == [] and d365_sim.records("SalesOrderLines") == []
    alone, _ = batch([op("POST", "$1/SalesOrderLines", {"ItemNumber": "D0001"}, 1)])
    assert statuses(await api.post("$batch", content=alone, headers=headers)) == [400]


async def test_number_sequence_order_header_alone_then_lines_carrying_its_number(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    """The `d365_sequence` shape: the number comes back from the header create, the lines carry it."""
    created = await api.post("SalesOrderHeadersV2", json={"OrderingCustomerAccountNumber": "US-001"})
    assert created.status_code == 201
    number = created.json()["SalesOrderNumber"]
    assert number.startswith("USMF-")
    body, headers = batch(
        [changeset([
            op("POST", "SalesOrderLines", {"SalesOrderNumber": number, "ItemNumber": "D0001", "CustomersLineNumber": 1}, 1),
            op("POST", "SalesOrderLines", {"SalesOrderNumber": number, "ItemNumber": "P-100", "CustomersLineNumber": 2}, 2),
        ])]
    )  # fmt: skip
    response = await api.post("$batch", content=body, headers=headers)
    assert statuses(response) == [201, 201]
    [order] = d365_sim.sales_orders()
    assert [line["CustomersLineNumber"] for line in order["SalesOrderLines"]] == [1, 2]


async def test_a_line_without_its_sales_order_number_is_refused(d365_sim: D365Sandbox, api: httpx.AsyncClient) -> None:
    created = await api.post("SalesOrderHeadersV2", json={"OrderingCustomerAccountNumber": "US-001"})
    number = created.json()["SalesOrderNumber"]
    alone = await api.post("SalesOrderLines", json={"ItemNumber": "D0001"})
    assert alone.status_code == 400
    assert "Field 'Sales order' must be filled in." in alone.json()["error"]["innererror"]["message"]
    body, headers = batch(
        [changeset([
            op("POST", "SalesOrderLines", {"SalesOrderNumber": number, "ItemNumber": "D0001"}, 1),
            op("POST", "SalesOrderLines", {"ItemNumber": "P-100"}, 2),
        ])]
    )  # fmt: skip
    response = await api.post("$batch", content=body, headers=headers)
    assert statuses(response) == [500] and "Field 'Sales order' must be filled in." in response.text
    # A POST through the header's navigation property would take the number from the URL: refused too.
    nav = await api.post(
        f"SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='{number}')/SalesOrderLines",
        json={"ItemNumber": "D0001"},
    )
    assert nav.status_code == 400 and "navigation property 'SalesOrderLines'" in nav.json()["error"]["message"]
    assert d365_sim.records("SalesOrderLines") == []


async def test_manual_order_numbers_need_the_number_sequence_to_allow_them(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    header = {"SalesOrderNumber": "PD42", "OrderingCustomerAccountNumber": "US-001"}
    refused = await api.post("SalesOrderHeadersV2", json=header)
    assert refused.status_code == 400
    assert "does not allow manual entry ('PD42')" in refused.json()["error"]["innererror"]["message"]
    async with httpx.AsyncClient(base_url=d365_sim.base_url, verify=d365_sim.ssl_context()) as control:
        switched = await control.put("/_sandbox/number-sequences", json={"manual_sales_order_numbers": True})
        assert switched.status_code == 200
        assert (await control.put("/_sandbox/number-sequences", json={"manual": 1})).status_code == 400
    assert (await api.post("SalesOrderHeadersV2", json=header)).status_code == 201
    again = await api.post("SalesOrderHeadersV2", json=header)  # the natural key guards a second create
    assert again.status_code == 400 and "The record already exists" in again.json()["error"]["innererror"]["message"]
    # A seed may carry the switch; the seed's own orders are existing data, numbered as given.
    old_order = {"SalesOrderNumber": "OLD-1", "OrderingCustomerAccountNumber": "US-001"}
    d365_sim.reset({**default_seed(), "sales_orders": [old_order], "manual_sales_order_numbers": False})
    assert [o["SalesOrderNumber"] for o in d365_sim.sales_orders()] == ["OLD-1"]
    assert (await api.post("SalesOrderHeadersV2", json=header)).status_code == 400


def test_local_stack_allows_manual_numbers_only_when_the_mapping_numbers_from_the_deal(tmp_path: Path) -> None:
    assert numbers_from_deal(from_deal_mapping(tmp_path)) is True  # numbering: from_deal
    assert numbers_from_deal(DEMO_MAPPING) is False  # D365's sequence, as shipped
    assert numbers_from_deal(ROOT / "config" / "mapping.example.yaml") is False


async def test_failed_second_line_rolls_back_the_whole_changeset(
    manual_numbers: D365Sandbox, api: httpx.AsyncClient
) -> None:
    d365_sim = manual_numbers
    body, headers = batch(
        [changeset([
            op("POST", "SalesOrderHeadersV2", {"SalesOrderNumber": "SO-9", "OrderingCustomerAccountNumber": "US-001"}, 1),
            op("POST", "SalesOrderLines", {"SalesOrderNumber": "SO-9", "ItemNumber": "D0001"}, 2),
            op("POST", "SalesOrderLines", {"SalesOrderNumber": "SO-9", "ItemNumber": "NOPE"}, 3),
        ])]
    )  # fmt: skip
    response = await api.post("$batch", content=body, headers=headers)
    assert response.status_code == 200
    assert statuses(response) == [500]  # one error part for the changeset
    assert "HTTP/1.1 500 Internal Server Error" in response.text
    assert "AxODataWriteException" in response.text and "'NOPE' in field 'Item number'" in response.text
    assert "Content-ID: 3" in response.text
    assert d365_sim.sales_orders() == []
    assert d365_sim.records("SalesOrderLines") == []


async def test_throttled_part_fails_its_changeset_with_retry_after(
    manual_numbers: D365Sandbox, api: httpx.AsyncClient
) -> None:
    d365_sim = manual_numbers
    d365_sim.inject_fault(status=429, retry_after=7, where="batch_part", path="SalesOrderLines")
    body, headers = batch(
        [
            changeset([
                op("POST", "SalesOrderHeadersV2", {"SalesOrderNumber": "SO-1", "OrderingCustomerAccountNumber": "US-001"}, 1),
                op("POST", "SalesOrderLines", {"SalesOrderNumber": "SO-1", "ItemNumber": "D0001"}, 2),
            ]),
            op("GET", "Currencies?$select=CurrencyCode", None, 3),
        ]
    )  # fmt: skip
    response = await api.post("$batch", content=body, headers=headers)
    assert statuses(response) == [429, 200]
    assert "Retry-After: 7" in response.text
    assert d365_sim.sales_orders() == []


async def test_malformed_batches_are_400(api: httpx.AsyncClient) -> None:
    body, headers = batch([changeset([op("POST", "CustomerGroups", {"CustomerGroupId": "T1"}, 1)])])
    truncated = await api.post("$batch", content=body[:-30], headers=headers)
    assert truncated.status_code == 400
    assert "truncated" in truncated.json()["error"]["message"]
    no_boundary = await api.post("$batch", content=body, headers={"Content-Type": "multipart/mixed"})
    assert no_boundary.status_code == 400
    not_multipart = await api.post("$batch", content=b"{}", headers={"Content-Type": "application/json"})
    assert not_multipart.status_code == 400


async def test_slow_changeset_and_concurrent_write_do_not_interleave(
    manual_numbers: D365Sandbox, api: httpx.AsyncClient
) -> None:
    d365_sim = manual_numbers
    import asyncio

    d365_sim.inject_fault(latency=0.3, where="batch_part", path="SalesOrderLines")
    body, headers = batch(
        [changeset([
            op("POST", "SalesOrderHeadersV2", {"SalesOrderNumber": "SO-C", "OrderingCustomerAccountNumber": "US-001"}, 1),
            op("POST", "SalesOrderLines", {"SalesOrderNumber": "SO-C", "ItemNumber": "D0001"}, 2),
        ])]
    )  # fmt: skip
    slow = asyncio.create_task(api.post("$batch", content=body, headers=headers))
    other = await api.post("CustomerGroups", json={"CustomerGroupId": "77", "Description": "while batching"})
    assert other.status_code == 201
    assert statuses(await slow) == [201, 201]
    assert [o["SalesOrderNumber"] for o in d365_sim.sales_orders()] == ["SO-C"]


async def test_lenient_line_endings_and_bad_operations_inside_a_changeset(api: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "multipart/mixed; boundary=b"}
    lf_only = b"--b\nContent-Type: application/http\n\nGET Currencies?$select=CurrencyCode HTTP/1.1\n\n\n--b--\n"
    response = await api.post("$batch", content=lf_only, headers=headers)
    assert statuses(response) == [200] and '"CurrencyCode": "EUR"' in response.text
    json_type = b"Content-Type: application/json\r\n"
    for inner, message in [
        (b"POST $9/SalesOrderLines HTTP/1.1\r\n" + json_type + b"\r\n{}", b"Content-ID '9'"),
        (b"POST CustomerGroups HTTP/1.1\r\n" + json_type + b"\r\n{bad json", b"not valid JSON"),
        (b"POST CustomerGroups HTTP/1.1\r\n" + json_type + b'\r\n{"Nope": 1}', b"'Nope' does not exist"),
    ]:
        body = (b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n"
                b"Content-ID: 1\r\n\r\n" + inner + b"\r\n--c--\r\n--b--\r\n")  # fmt: skip
        response = await api.post("$batch", content=body, headers=headers)
        assert response.status_code == 200
        assert statuses(response) == [400]
        assert message in response.content
