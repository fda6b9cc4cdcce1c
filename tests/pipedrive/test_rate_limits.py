"""Rate limits against the simulator's limiter: burst 429s ridden out, pacing, daily budget -> RetryLater."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from connector.dev.sandbox.pipedrive.ratelimit import RateLimits
from connector.dev.sandbox.pipedrive.sandbox import PipedriveSandbox
from connector.errors import RetryLaterError
from connector.pipedrive.auth import ApiTokenAuth
from connector.pipedrive.client import PipedriveClient

from .conftest import FAST, TOKEN, WON_DEALS

BURST = 3
WINDOW = 0.1


def limited_429s(pd: PipedriveSandbox) -> list[dict[str, object]]:
    """429s the limiter itself gave (not injected faults): each one is a request over the limit."""
    return [e for e in pd.requests() if e["status"] == 429 and not e.get("fault")]


async def test_429_storm_is_ridden_out_then_paced_under_the_burst_limit(pd: PipedriveSandbox) -> None:
    pd.set_limits(RateLimits(burst_api_token=BURST, window_seconds=WINDOW))
    async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as client:
        # A storm: far more concurrent calls than the window allows, all must still succeed.
        deals = await asyncio.gather(*(client.get_deal(100 + i % WON_DEALS) for i in range(10)))
        assert len(deals) == 10
        storm = len(limited_429s(pd))
        assert storm > 0, "the storm must really have hit the limiter"
        # Only the opening volley (sent before any rate-limit headers were known) may be refused:
        # the retries are spread over the following windows instead of all rushing in at each reset.
        assert storm <= 10 - BURST
        # Afterwards: steady traffic is paced by the headers and never goes over the limit again.
        ids = [d.id async for d in client.iter_won_deals(datetime(2000, 1, 1, tzinfo=UTC), limit=2)]
        for i in range(3):
            await client.get_deal(100 + i)
    assert ids == [100 + i for i in range(WON_DEALS)]
    assert len(limited_429s(pd)) == storm


async def test_injected_429s_with_reset_headers_are_waited_out(pd: PipedriveSandbox) -> None:
    headers = {"x-ratelimit-limit": "3", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.05"}
    pd.inject_fault("/api/v2/deals/100", 429, times=3, headers=headers)
    loop = asyncio.get_running_loop()
    async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as client:
        started = loop.time()
        assert (await client.get_deal(100)).id == 100
        elapsed = loop.time() - started
    assert [e["status"] for e in pd.requests()] == [429, 429, 429, 200]
    assert elapsed >= 3 * 0.05 * 0.9  # it waited for the reset each time instead of hammering


@pytest.mark.parametrize("send_retry_after", [True, False])
async def test_daily_budget_429_becomes_retry_later(pd: PipedriveSandbox, send_retry_after: bool) -> None:
    pd.set_limits(RateLimits(daily_tokens=3, send_retry_after=send_retry_after))
    async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as client:
        for i in range(3):
            await client.get_deal(100 + i)  # 1 token each
        with pytest.raises(RetryLaterError) as later:
            await client.get_deal(103)
        assert later.value.delay > 60 and later.value.status == 429
        assert "budget" in str(later.value)
        assert len(pd.requests()) == 4  # no retries were spent on the exhausted budget
        # The pacer now knows the wait, with or without a Retry-After: the next call fails fast without
        # touching the API (another 429 after a spent budget is what gets api_token traffic blocked).
        with pytest.raises(RetryLaterError):
            await client.get_deal(100)
        assert len(pd.requests()) == 4


async def test_clients_of_one_token_share_a_pacer(pd: PipedriveSandbox) -> None:
    pd.set_limits(RateLimits(daily_tokens=1))
    async with (
        PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as first,
        PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as second,
    ):
        await first.get_deal(100)
        with pytest.raises(RetryLaterError):
            await first.get_deal(101)
        with pytest.raises(RetryLaterError):
            await second.get_deal(101)
    assert len(pd.requests()) == 2


async def test_searches_are_paced_by_the_search_limit_and_other_calls_by_theirs(pd: PipedriveSandbox) -> None:
    """The search limit (here 2 per window) never slows other calls to it, and draws no 429 once known."""
    pd.set_limits(RateLimits(burst_api_token=6, burst_search=2, window_seconds=WINDOW))
    async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as client:
        await client.search_product_by_code("NO-SUCH-CODE")  # learns the search limit
        await client.get_deal(100)  # ... and the general one
        searches = [client.search_product_by_code(f"NONE-{i}") for i in range(6)]
        reads = [client.get_deal(100 + i % WON_DEALS) for i in range(12)]
        await asyncio.gather(*searches, *reads)
    assert limited_429s(pd) == []
    by_route = [e["route"] for e in pd.requests()]
    assert by_route.count("/api/v2/products/search") == 7 and by_route.count("/api/v2/deals/{id}") == 13
