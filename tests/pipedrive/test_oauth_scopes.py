"""The connector under OAuth with exactly the scopes docs/admin-pipedrive.md tells an admin to grant (the
simulator's default client scope): every call the client makes passes; the doctor names what is missing."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from connector.dev.sandbox.pipedrive.sandbox import PipedriveSandbox
from connector.doctor.pipedrive import _auth, _webhook
from connector.pipedrive.auth import OAuth2RefreshAuth, exchange_authorization_code
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.models import OrganizationInput, ProductInput, ProductPriceInput

from .conftest import CLIENT_ID, CLIENT_SECRET, FAST, ORDER_NO, ORG_ACCOUNT, REDIRECT

SINCE = datetime(2000, 1, 1, tzinfo=UTC)


async def _client(pd: PipedriveSandbox, scope: str | None = None) -> PipedriveClient:
    tokens = await exchange_authorization_code(
        token_url=f"{pd.base_url}/oauth/token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        code=pd.issue_auth_code(CLIENT_ID, scope), redirect_uri=REDIRECT,
    )  # fmt: skip
    assert tokens.refresh_token
    auth = OAuth2RefreshAuth(
        token_url=f"{pd.base_url}/oauth/token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        refresh_token=tokens.refresh_token, policy=FAST,
    )  # fmt: skip
    return PipedriveClient(pd.base_url, auth, policy=FAST)


async def test_every_client_call_passes_with_the_documented_scopes(pd: PipedriveSandbox) -> None:
    async with await _client(pd) as client:
        assert (await client.auth.current_token()).scope == "base,deals:full,contacts:full,products:full,admin"  # type: ignore[attr-defined]
        await client.request("GET", "/v1/users/me")  # the doctor's API-token check; `base` under OAuth
        assert [d.id async for d in client.iter_won_deals(SINCE)]
        assert [d.id async for d in client.iter_won_deals(SINCE, archived=True)] == []
        await client.get_deal(100)
        await client.update_deal_fields(100, {ORDER_NO: "SO-1"})
        assert await client.get_deal_products(100)
        assert (await client.get_products_for_deals([100, 101]))[101]
        await client.get_person(1)
        org = await client.create_organization(OrganizationInput(name="Beta AB"))
        await client.update_organization(org.id, OrganizationInput(custom_fields={ORG_ACCOUNT: "C-1"}))
        assert [o.id for o in await client.find_organizations_by_field(ORG_ACCOUNT, "C-1")] == [org.id]
        assert [o.id async for o in client.iter_organizations()]
        assert await client.search_product_by_code("W-100") is not None
        product = await client.create_product(
            ProductInput(name="Sprocket", code="S-1", prices=[ProductPriceInput(price=3.5, currency="EUR")])
        )
        await client.update_product(product.id, ProductInput(name="Sprocket XL"))
        assert set(await client.get_products([1, product.id])) == {1, product.id}
        assert [p.id async for p in client.iter_products()]
        assert [f async for f in client.iter_field_definitions("deal")]
        assert [f async for f in client.iter_field_definitions("organization")]
        assert [f async for f in client.iter_field_definitions("person")]
        assert [f async for f in client.iter_field_definitions("product")]
        hook = await client.ensure_webhook("https://connector.example/api/pipedrive/webhook", "u", "pw-pw-pw-pw")
        await client.delete_webhook(hook.id)
    refused = [(e["method"], e["route"], e["status"]) for e in pd.requests() if e["status"] >= 400]
    assert refused == []


async def test_admin_alone_is_not_enough_and_the_doctor_says_so(pd: PipedriveSandbox) -> None:
    rt: Any = SimpleNamespace(settings=SimpleNamespace(pipedrive_auth_mode="oauth"))
    async with await _client(pd, "admin") as client:
        check = await _auth(rt, client)
        assert check.status == "fail"
        assert "deals:full, products:full, contacts:full" in check.detail
    async with await _client(pd) as client:
        assert (await _auth(rt, client)).status == "pass"


async def test_without_admin_the_flows_work_and_the_doctor_only_warns_about_the_webhook(pd: PipedriveSandbox) -> None:
    """`admin` is optional (docs/admin-pipedrive.md): it only lets the connector register and check its
    webhook, which an admin may do in Pipedrive's UI. The doctor warns, naming that; it does not fail."""
    rt: Any = SimpleNamespace(settings=SimpleNamespace(pipedrive_auth_mode="oauth"))
    async with await _client(pd, "deals:full,contacts:full,products:full") as client:
        auth = await _auth(rt, client)
        webhook = await _webhook(rt, client, None)
        assert [d.id async for d in client.iter_won_deals(SINCE)]  # the order flow's reads pass
    assert (auth.status, webhook.status) == ("warn", "warn")
    assert "not admin" in auth.detail and "Settings > Tools and apps > Webhooks" in webhook.fix
