"""OAuth2 against the simulator's /oauth/token: refresh before expiry, once on 401, api_domain, factory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.dev.sandbox.pipedrive.sandbox import PipedriveSandbox
from connector.errors import AuthError, ConfigError
from connector.pipedrive.auth import OAuth2RefreshAuth, exchange_authorization_code
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.factory import open_pipedrive
from connector.retry import RetryPolicy
from connector.secrets import LocalSecretStore

from .conftest import CLIENT_ID, CLIENT_SECRET, FAST, REDIRECT, TOKEN, WON_DEALS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def first_refresh_token(pd: PipedriveSandbox) -> str:
    code = pd.issue_auth_code(CLIENT_ID)
    tokens = await exchange_authorization_code(
        token_url=f"{pd.base_url}/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        code=code,
        redirect_uri=REDIRECT,
    )
    assert tokens.refresh_token and tokens.api_domain == pd.base_url
    return tokens.refresh_token


async def oauth(pd: PipedriveSandbox, **kwargs: object) -> OAuth2RefreshAuth:
    return OAuth2RefreshAuth(
        token_url=f"{pd.base_url}/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=await first_refresh_token(pd),
        policy=FAST,
        **kwargs,  # type: ignore[arg-type]
    )


def api_log(pd: PipedriveSandbox) -> list[tuple[str, int]]:
    return [(e["path"], e["status"]) for e in pd.requests() if e["path"] != "/oauth/token"]


async def test_expiry_mid_run_refreshes_once_without_losing_a_request(pd: PipedriveSandbox) -> None:
    auth = await oauth(pd)
    seen: list[int] = []
    async with PipedriveClient(pd.base_url, auth, policy=FAST) as client:
        async for deal in client.iter_won_deals(datetime(2000, 1, 1, tzinfo=UTC), limit=3):
            seen.append(deal.id)
            if len(seen) == 3:
                assert pd.expire_access_tokens() >= 1  # the token dies between page 1 and page 2
    assert seen == [100 + i for i in range(WON_DEALS)]
    assert auth.renewals == 2
    statuses = [s for path, s in api_log(pd)]
    assert statuses == [200, 401, 200, 200]  # page 2 failed once, was renewed and re-sent
    page2 = [e for e in pd.requests() if e["path"] == "/api/v2/deals"][1:3]
    assert page2[0]["query"] == page2[1]["query"]


async def test_token_is_refreshed_before_expiry_without_a_401(pd: PipedriveSandbox) -> None:
    clock = Clock()
    auth = await oauth(pd, clock=clock, margin=60)
    async with PipedriveClient(pd.base_url, auth, policy=FAST) as client:
        await client.get_deal(100)
        clock.now += 3599 - 59  # inside the safety margin: refresh proactively
        await client.get_deal(101)
    assert auth.renewals == 2
    assert all(status == 200 for _, status in api_log(pd))


async def test_concurrent_requests_share_one_renewal(pd: PipedriveSandbox) -> None:
    auth = await oauth(pd)
    async with PipedriveClient(pd.base_url, auth, policy=FAST) as client:
        await client.get_deal(100)
        pd.expire_access_tokens()
        deals = await asyncio.gather(*(client.get_deal(100 + i) for i in range(5)))
    assert [d.id for d in deals] == [100, 101, 102, 103, 104]
    assert auth.renewals == 2


async def test_requests_follow_api_domain(pd: PipedriveSandbox) -> None:
    auth = await oauth(pd)
    # Port 9 (discard) is closed: only the token's api_domain can make this work.
    async with PipedriveClient("http://127.0.0.1:9", auth, policy=FAST) as client:
        assert (await client.get_deal(100)).id == 100
    assert auth.api_domain == pd.base_url


async def test_second_401_after_renewal_fails_clearly(pd: PipedriveSandbox) -> None:
    auth = await oauth(pd)
    pd.inject_fault("/api/v2/deals/100", 401, times=2, body={"success": False, "error": "unauthorized access"})
    async with PipedriveClient(pd.base_url, auth, policy=FAST) as client:
        with pytest.raises(AuthError) as denied:
            await client.get_deal(100)
    assert denied.value.status == 401
    assert auth.renewals == 2
    assert api_log(pd) == [("/api/v2/deals/100", 401), ("/api/v2/deals/100", 401)]


async def test_rejected_refresh_token_is_an_auth_error_without_the_token(pd: PipedriveSandbox) -> None:
    auth = OAuth2RefreshAuth(
        token_url=f"{pd.base_url}/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token="1:7001:revoked-refresh-token",
        policy=FAST,
    )
    async with PipedriveClient(pd.base_url, auth, policy=FAST) as client:
        with pytest.raises(AuthError) as denied:
            await client.get_deal(100)
    assert "refresh_token is invalid" in str(denied.value)
    assert "revoked-refresh-token" not in str(denied.value) and CLIENT_SECRET not in str(denied.value)
    assert "redacted" in repr(auth)


@dataclass
class PdSettings:
    pipedrive_company_domain: str
    pipedrive_auth_mode: str
    pipedrive_base_url: str | None
    pipedrive_oauth_token_url: str

    def retry_policy(self) -> RetryPolicy:
        return FAST


async def test_factory_builds_both_auth_modes(pd: PipedriveSandbox, tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets.bin", Fernet.generate_key())
    await store.set("pipedrive-api-token", TOKEN)
    await store.set("pipedrive-oauth-client-id", CLIENT_ID)
    await store.set("pipedrive-oauth-client-secret", CLIENT_SECRET)
    await store.set("pipedrive-oauth-refresh-token", await first_refresh_token(pd))
    token_url = f"{pd.base_url}/oauth/token"
    for mode in ("api_token", "oauth"):
        settings = PdSettings("sandbox-distribution", mode, pd.base_url, token_url)
        async with await open_pipedrive(settings, store, policy=FAST) as client:
            assert (await client.get_deal(100)).id == 100
    with pytest.raises(ConfigError, match="PIPEDRIVE_AUTH_MODE"):
        await open_pipedrive(PdSettings("x", "password", None, token_url), store)


async def test_a_rotated_refresh_token_is_saved_to_the_secret_store(tmp_path: Path) -> None:
    """Pipedrive returns the same refresh token today; if it ever rotates, the new one must be kept.

    The simulator does not rotate, so this uses a minimal token endpoint on loopback that does.
    """
    from aiohttp import web

    issued: list[str] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "refresh_token"
        issued.append(f"refresh-{len(issued) + 1}")
        return web.json_response(
            {"access_token": "a", "token_type": "Bearer", "expires_in": 3599, "refresh_token": issued[-1]}
        )

    app = web.Application()
    app.router.add_post("/oauth/token", token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    store = LocalSecretStore(tmp_path / "secrets.bin", Fernet.generate_key())
    await store.set("pipedrive-oauth-refresh-token", "refresh-0")
    clock = Clock()
    try:
        auth = OAuth2RefreshAuth(
            token_url=f"http://127.0.0.1:{port}/oauth/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token="refresh-0",
            store=store,
            clock=clock,
            policy=FAST,
        )
        await auth.current_token()
        assert await store.get("pipedrive-oauth-refresh-token") == "refresh-1"
        clock.now += 3600
        await auth.current_token()
        assert await store.get("pipedrive-oauth-refresh-token") == "refresh-2"
        await auth.aclose()
    finally:
        await runner.cleanup()
