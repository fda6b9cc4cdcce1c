"""Answers that break the OData contract (a misbehaving proxy/gateway) give ProtocolError, never a crash.

The simulator speaks the contract, so these use a tiny loopback server that does not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

import httpx
import pytest
from aiohttp import web

from connector.api_auth import ApiAuth
from connector.d365.batch import Operation
from connector.d365.client import D365Client
from connector.errors import ProtocolError, UnknownOutcomeError

from .conftest import POLICY

TRUNCATED = (
    b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n"
    b"--changesetresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    b'Content-ID: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\r\n{"Customer'
)


class StaticBearer(ApiAuth):
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer test"
        yield request


async def _batch(_: web.Request) -> web.Response:
    return web.Response(
        body=TRUNCATED,
        headers={"Content-Type": "multipart/mixed; boundary=batchresponse_1"},
    )


async def _html(_: web.Request) -> web.Response:
    return web.Response(text="<html><body>Sign in</body></html>", content_type="text/html")


async def _no_value(_: web.Request) -> web.Response:
    return web.json_response({"@odata.context": "x", "items": []})


async def _foreign_next(_: web.Request) -> web.Response:
    return web.json_response(
        {"value": [{"CurrencyCode": "USD"}], "@odata.nextLink": "https://evil.example/data/Currencies?$skip=1"}
    )


async def _next_link_back(request: web.Request) -> web.Response:
    # A page that names a page already read (here: itself) would keep a reader looping forever.
    back = str(request.url) if "$skip" in request.query_string else f"{request.url.with_query(None)}?$skip=1"
    return web.json_response({"value": [{"UnitSymbol": "pcs"}], "@odata.nextLink": back})


async def _bad_record(_: web.Request) -> web.Response:
    # Lookups are $filter queries: the row matches the key but a field has the wrong type.
    return web.json_response({"value": [{"dataAreaId": "usmf", "CustomerAccount": "US-001", "PartyType": 7}]})


DEEP = b"[" * 100_000 + b"]" * 100_000  # past the JSON parser's recursion limit (a proxy's junk, not OData)


async def _deep(request: web.Request) -> web.Response:
    status = 500 if "CustomersV3" in request.path else 201 if request.method == "POST" else 200
    return web.Response(status=status, body=b'{"value": ' + DEEP + b"}", content_type="application/json")


@pytest.fixture
async def broken() -> AsyncIterator[D365Client]:
    app = web.Application()
    app.router.add_post("/data/$batch", _batch)
    app.router.add_get("/data/LegalEntities", _html)
    app.router.add_get("/data/CustomerGroups", _no_value)
    app.router.add_get("/data/Currencies", _foreign_next)
    app.router.add_get("/data/Units", _next_link_back)
    app.router.add_get("/data/{tail:CustomersV3.*}", _bad_record)
    app.router.add_get("/data/Sites", _deep)
    app.router.add_post("/data/SalesOrderHeadersV2", _deep)
    app.router.add_post("/data/CustomersV3", _deep)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with D365Client(f"http://127.0.0.1:{port}", StaticBearer(), policy=POLICY) as client:
        yield client
    await runner.cleanup()


async def test_truncated_multipart(broken: D365Client) -> None:
    # A write answered 200 but unreadable may have been saved: the flow must look before creating again.
    with pytest.raises(UnknownOutcomeError, match=r"truncated.*may have been saved"):
        await broken.execute_changeset([Operation(method="POST", path="CustomerGroups", body={"dataAreaId": "usmf"})])


async def test_html_with_200(broken: D365Client) -> None:
    with pytest.raises(ProtocolError, match="expected JSON, got text/html"):
        [r async for r in broken.iter_entities("LegalEntities")]


async def test_collection_without_value(broken: D365Client) -> None:
    with pytest.raises(ProtocolError, match="'value' array"):
        [r async for r in broken.iter_entities("CustomerGroups")]


async def test_next_link_to_another_host_is_not_followed(broken: D365Client) -> None:
    rows = []
    with pytest.raises(ProtocolError, match="another host"):
        async for row in broken.iter_entities("Currencies"):
            rows.append(row)
    assert rows == [{"CurrencyCode": "USD"}]


async def test_a_next_link_to_a_page_already_read_is_not_followed(broken: D365Client) -> None:
    rows = []
    with pytest.raises(ProtocolError, match="already read"):
        async for row in broken.iter_entities("Units"):
            rows.append(row)
    assert rows == [{"UnitSymbol": "pcs"}] * 2  # the first page, then the page that names itself


async def test_record_of_the_wrong_shape(broken: D365Client) -> None:
    with pytest.raises(ProtocolError, match="PartyType"):
        await broken.find_customer("US-001", "usmf")


async def test_json_nested_past_the_parser_s_depth(broken: D365Client) -> None:
    """A read is a ProtocolError, a create answered so may have been saved, and an error body so is still
    classified (a RecursionError escaping would look like 'nothing sent' and let a retry create twice)."""
    with pytest.raises(ProtocolError, match="expected JSON"):
        [r async for r in broken.iter_entities("Sites")]
    with pytest.raises(UnknownOutcomeError, match="may have been saved"):
        await broken.create("SalesOrderHeadersV2", {"dataAreaId": "usmf"})
    with pytest.raises(UnknownOutcomeError, match="500"):
        await broken.create("CustomersV3", {"dataAreaId": "usmf"})
