"""Reads and writes against the simulator over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from aiohttp import web

from connector.dev.sandbox.pipedrive.sandbox import PipedriveSandbox
from connector.errors import (
    AuthError,
    NotFoundError,
    PermanentError,
    ProtocolError,
    RateLimitedError,
    TransientError,
    ValidationError,
)
from connector.pipedrive.auth import ApiTokenAuth
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.errors import decode_envelope, error_for
from connector.pipedrive.models import AddressInput, OrganizationInput, ProductInput, ProductPriceInput
from tests.fixtures.loopback import serving

from .conftest import FAST, ORDER_NO, ORG_ACCOUNT, TOKEN, WON_DEALS


def api_calls(pd: PipedriveSandbox, path: str) -> list[dict[str, object]]:
    return [e for e in pd.requests() if e["path"] == path]


async def test_won_deals_page_through_more_than_one_page(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    since = datetime(2026, 11, 3, tzinfo=UTC)
    deals = [d async for d in client.iter_won_deals(since, limit=2)]
    assert [d.id for d in deals] == [102, 103, 104, 105, 106]  # oldest change first, since inclusive
    assert all(d.status == "won" for d in deals)
    calls = api_calls(pd, "/api/v2/deals")
    assert len(calls) == 3
    assert calls[0]["query"] == {
        "status": "won",
        "updated_since": "2026-11-03T00:00:00Z",
        "sort_by": "update_time",
        "sort_direction": "asc",
        "limit": "2",
    }
    assert "cursor" in calls[1]["query"] and "cursor" in calls[2]["query"]


async def test_all_won_deals_with_default_page_size(client: PipedriveClient) -> None:
    deals = [d async for d in client.iter_won_deals(datetime(2000, 1, 1, tzinfo=UTC))]
    assert len(deals) == WON_DEALS


async def test_naive_watermark_is_refused(client: PipedriveClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        client.iter_won_deals(datetime(2026, 1, 1))


async def test_deal_and_its_products(client: PipedriveClient) -> None:
    deal = await client.get_deal(201)
    assert (deal.title, deal.status, deal.org_id, deal.currency) == ("Two lines", "open", 1, "EUR")
    lines = await client.get_deal_products(201)
    assert [(line.product_id, line.quantity, line.item_price) for line in lines] == [(1, 2, 10), (2, 1, 25)]


async def test_products_for_many_deals_in_one_call(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    result = await client.get_products_for_deals([100, 201, 200, 100])
    assert set(result) == {100, 201, 200}
    assert [line.product_id for line in result[201]] == [1, 2]
    assert result[200] == []
    assert len(api_calls(pd, "/api/v2/deals/products")) == 1


async def test_organization_person_product(client: PipedriveClient) -> None:
    org = await client.get_organization(1)
    assert org.name == "Acme Oy" and org.address is not None and org.address.country == "Finland"
    person = await client.get_person(1)
    assert person.primary_email == "aino@acme.fi" and person.org_id == 1
    product = await client.get_product(2)
    assert (product.code, product.prices[0].price, product.prices[0].currency) == ("G-200", 25, "EUR")
    codes = [p.code async for p in client.iter_products(limit=2)]
    assert codes == ["W-100", "G-200", "g-300"]


async def test_search_product_by_code(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    found = await client.search_product_by_code("G-200")
    assert found is not None and found.id == 2 and found.prices  # full record, not the search hit
    assert (await client.search_product_by_code("G-300")) is not None  # exact match is case-insensitive
    assert await client.search_product_by_code("NOPE-1") is None
    query = api_calls(pd, "/api/v2/products/search")[0]["query"]
    assert {k: query[k] for k in ("term", "fields", "exact_match")} == {
        "term": "G-200",
        "fields": "code",
        "exact_match": "true",
    }


async def test_create_and_update_product(client: PipedriveClient) -> None:
    created = await client.create_product(
        ProductInput(name="Sprocket", code="S-1", unit="pcs", prices=[ProductPriceInput(price=3.5, currency="EUR")])
    )
    assert created.id and created.code == "S-1"
    updated = await client.update_product(created.id, ProductInput(name="Sprocket XL"))
    assert (updated.name, updated.code, updated.prices[0].price) == ("Sprocket XL", "S-1", 3.5)
    assert (await client.get_product(created.id)).name == "Sprocket XL"


async def test_create_and_update_organization(client: PipedriveClient) -> None:
    org = await client.create_organization(
        OrganizationInput(name="Beta AB", address=AddressInput(value="Gatan 2, Stockholm", country="Sweden"))
    )
    assert org.name == "Beta AB"
    updated = await client.update_organization(org.id, OrganizationInput(custom_fields={ORG_ACCOUNT: "C-0042"}))
    assert updated.custom_fields[ORG_ACCOUNT] == "C-0042" and updated.name == "Beta AB"


async def test_update_deal_fields_writes_only_custom_fields(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    deal = await client.update_deal_fields(103, {ORDER_NO: "SO-000123"})
    assert deal.custom_fields[ORDER_NO] == "SO-000123"
    sent = next(e for e in pd.requests() if e["method"] == "PATCH")["body"]
    assert sent == {"custom_fields": {ORDER_NO: "SO-000123"}}
    with pytest.raises(ValidationError):
        await client.update_deal_fields(103, {})


async def test_error_statuses_become_typed_errors(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    with pytest.raises(NotFoundError) as missing:
        await client.get_deal(999)
    assert missing.value.status == 404 and "Deal not found" in str(missing.value)
    with pytest.raises(ValidationError) as invalid:
        await client.update_deal_fields(103, {"f" * 40: "x"})
    assert invalid.value.status == 400 and invalid.value.lines
    async with PipedriveClient(pd.base_url, ApiTokenAuth("wrong-token"), policy=FAST) as bad:
        with pytest.raises(AuthError) as denied:
            await bad.get_deal(100)
    assert "wrong-token" not in str(denied.value)


async def test_5xx_is_retried_then_succeeds(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    pd.inject_fault("/api/v2/deals/100", 502, times=2)
    assert (await client.get_deal(100)).id == 100
    assert [e["status"] for e in api_calls(pd, "/api/v2/deals/100")] == [502, 502, 200]


async def test_persistent_5xx_gives_up_as_transient(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    pd.inject_fault("/api/v2/deals/100", 503, times=10)
    with pytest.raises(TransientError) as failed:
        await client.get_deal(100)
    assert failed.value.status == 503
    assert len(api_calls(pd, "/api/v2/deals/100")) == FAST.max_attempts


async def test_other_4xx_is_not_retried(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    pd.inject_fault("/api/v2/deals/100", 403, times=5, body={"success": False, "error": "Forbidden"})
    with pytest.raises(Exception) as denied:
        await client.get_deal(100)
    assert denied.value.status == 403  # type: ignore[attr-defined]
    assert len(api_calls(pd, "/api/v2/deals/100")) == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"success": True, "data": {"id": "abc", "status": "won"}}, "id"),
        ({"success": True, "data": {"id": 100, "status": "pending"}}, "status"),
        ({"success": True, "data": {"id": 100, "status": "won", "org_id": "acme"}}, "org_id"),
        ({"success": True, "data": {"id": 100, "status": "won", "custom_fields": []}}, "custom_fields"),
        ({"success": True, "data": {"id": 100}}, "status: Field required"),
        ({"success": True}, "no data"),
        (["not", "an", "envelope"], "JSON object"),
    ],
)
async def test_contract_breaks_raise_protocol_error_naming_the_field(
    pd: PipedriveSandbox, client: PipedriveClient, body: object, needle: str
) -> None:
    pd.inject_fault("/api/v2/deals/100", 200, body=body)
    with pytest.raises(ProtocolError) as broken:
        await client.get_deal(100)
    assert needle in str(broken.value)


async def test_unknown_fields_are_tolerated(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    pd.inject_fault(
        "/api/v2/deals/100", 200, body={"success": True, "data": {"id": 100, "status": "won", "brand_new": {"x": 1}}}
    )
    deal = await client.get_deal(100)
    assert deal.id == 100 and deal.model_extra == {"brand_new": {"x": 1}}


async def test_timeouts_are_retried(pd: PipedriveSandbox) -> None:
    pd.inject_fault("/api/v2/deals/100", None, latency=0.4)  # the first call hangs past the client timeout
    async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST, timeout=0.1) as client:
        assert (await client.get_deal(100)).id == 100
    assert len(api_calls(pd, "/api/v2/deals/100")) == 2


def test_edge_block_page_is_rate_limited_not_permanent() -> None:
    request = httpx.Request("GET", "https://acme.pipedrive.com/api/v2/deals")
    html = httpx.Response(403, text="<html>This error is produced by Cloudflare</html>", request=request)
    assert isinstance(error_for(html), RateLimitedError)
    api_403 = httpx.Response(403, json={"success": False, "error": "Scope and URL mismatch"}, request=request)
    mapped = error_for(api_403)
    assert isinstance(mapped, PermanentError) and "Scope and URL mismatch" in str(mapped)


def test_non_json_success_is_a_protocol_error() -> None:
    request = httpx.Request("GET", "https://acme.pipedrive.com/api/v2/deals/1")
    with pytest.raises(ProtocolError, match="not JSON"):
        decode_envelope(httpx.Response(200, text="<html>maintenance</html>", request=request))


async def test_products_by_ids_in_one_call(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    found = await client.get_products([3, 1, 999, 1])
    assert {pid: p.code for pid, p in found.items()} == {1: "W-100", 3: "g-300"}
    assert len(api_calls(pd, "/api/v2/products")) == 1


async def test_a_cursor_already_followed_is_refused(pd: PipedriveSandbox, client: PipedriveClient) -> None:
    page = {"success": True, "data": [{"id": 100, "status": "won"}], "additional_data": {"next_cursor": "c1"}}
    pd.inject_fault("/api/v2/deals", 200, body=page, times=5)  # every page names the same next page
    seen = []
    with pytest.raises(ProtocolError, match="already read"):
        async for deal in client.iter_deals():
            seen.append(deal.id)
    assert seen == [100, 100] and len(api_calls(pd, "/api/v2/deals")) == 2


async def test_json_nested_past_the_parser_s_depth_is_a_protocol_error() -> None:
    """A proxy's junk (or a broken answer) nested ~100k deep: a ProtocolError for a success and still a
    classified TransientError for an error body, never a RecursionError escaping the client."""
    deep = b"[" * 100_000 + b"]" * 100_000

    async def answer(request: web.Request) -> web.Response:
        status = 503 if request.match_info["id"] == "2" else 200
        return web.Response(
            status=status, body=b'{"success": true, "data": ' + deep + b"}", content_type="application/json"
        )

    app = web.Application()
    app.router.add_get("/api/v2/deals/{id}", answer)
    async with serving(app) as url, PipedriveClient(url, ApiTokenAuth("t"), policy=FAST) as client:
        with pytest.raises(ProtocolError, match="not JSON"):
            await client.get_deal(1)
        with pytest.raises(TransientError, match="503"):
            await client.get_deal(2)
