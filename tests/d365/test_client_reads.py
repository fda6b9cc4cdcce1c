"""D365Client reads against the simulator over real HTTPS: paging, tokens, scoping, escaping, errors."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from connector.d365.client import D365Client
from connector.d365.factory import open_d365
from connector.dev.sandbox.d365 import D365Sandbox
from connector.dev.sandbox.d365.seed import default_seed
from connector.errors import AuthError, RetryLaterError, TransientError
from connector.retry import RetryPolicy

from .conftest import Waits, make_auth, make_client


def _data_gets(sim: D365Sandbox, entity_set: str) -> list:
    return [r for r in sim.requests() if r.method == "GET" and r.path == f"/data/{entity_set}"]


async def test_paging_follows_next_link(waits: Waits) -> None:
    async with D365Sandbox(page_size=2) as sim, make_client(sim, waits) as d365:
        rows = [r async for r in d365.iter_entities("CustomersV3", cross_company=True, select=["CustomerAccount"])]
        assert sorted(r["CustomerAccount"] for r in rows) == ["DE-001", "US-001", "US-002"]
        pages = _data_gets(sim, "CustomersV3")
        assert len(pages) == 2 and all(p.status == 200 for p in pages)
        # $top stops early, without fetching the next page.
        first = [r async for r in d365.iter_entities("CustomersV3", cross_company=True, top=1)]
        assert len(first) == 1 and len(_data_gets(sim, "CustomersV3")) == 3


async def test_token_renewed_when_it_expires_mid_run(waits: Waits) -> None:
    async with D365Sandbox(page_size=1) as sim:
        auth = make_auth(sim)
        async with make_client(sim, waits, auth=auth) as d365:
            seen = []
            async for row in d365.iter_entities("CustomersV3", cross_company=True):
                seen.append(row["CustomerAccount"])
                if len(seen) == 1:
                    sim.expire_tokens()
            assert len(seen) == 3
            statuses = [r.status for r in _data_gets(sim, "CustomersV3")]
            assert statuses == [200, 401, 200, 200]  # one 401, renewed once, run continued
            assert auth.renewals == 2


async def test_token_renewed_before_expiry_without_a_401(d365_sim: D365Sandbox, waits: Waits) -> None:
    now = [1_000_000_000.0]
    auth = make_auth(d365_sim, clock=lambda: now[0])
    async with make_client(d365_sim, waits, auth=auth) as d365:
        await d365.find_customer("US-001", "usmf")
        token = await auth.current_token()
        now[0] = 1e12  # far past expires_on: the cached token must not be used
        assert await d365.find_customer("US-001", "usmf") is not None
        assert auth.renewals == 2 and await auth.current_token() != token
        assert 401 not in [r.status for r in d365_sim.requests()]


async def test_wrong_secret_is_an_auth_error_without_the_secret(d365_sim: D365Sandbox, waits: Waits) -> None:
    from connector.d365.auth import D365TokenAuth, client_secret_factory

    factory = client_secret_factory(
        d365_sim.tenant_id, d365_sim.client_id, "wrong-S3cret!", authority=d365_sim.authority,
        ca_bundle=d365_sim.ca_cert_path,
    )  # fmt: skip
    async with make_client(d365_sim, waits, auth=D365TokenAuth(factory, d365_sim.base_url)) as d365:
        with pytest.raises(AuthError) as caught:
            await d365.find_customer("US-001", "usmf")
    assert "wrong-S3cret!" not in str(caught.value) and "AADSTS7000215" in str(caught.value)


async def test_cross_company_reads_find_what_the_default_company_does_not(d365: D365Client) -> None:
    default_rows = [r["CustomerAccount"] async for r in d365.iter_entities("CustomersV3")]
    assert "DE-001" not in default_rows and "US-001" in default_rows
    found = await d365.find_customer("DE-001", "demf")
    assert found is not None and found.data_area_id == "demf" and found.sales_currency_code == "EUR"
    assert await d365.find_customer("DE-001", "usmf") is None
    scoped = [r["CustomerAccount"] async for r in d365.iter_entities("CustomersV3", legal_entity="DEMF")]
    assert scoped == ["DE-001"]


async def test_escaping_quote_in_name_and_leading_space_in_item(d365: D365Client) -> None:
    matches = await d365.find_customers_by_name("O'Brien & Sons", "USA", "usmf")
    assert [c.customer_account for c in matches] == ["US-002"]
    assert await d365.find_customers_by_name("o'brien & sons", "USA", "usmf") != []  # case-insensitive
    assert await d365.find_customers_by_name("O'Brien & Sons", "DEU", "usmf") == []
    assert await d365.find_customers_by_name("O*", None, "usmf") == []  # '*' is a wildcard: exact re-check
    item = await d365.find_item(" RFI-TEST-001", "usmf")
    assert item is not None and item.item_number == " RFI-TEST-001" and str(item.sales_price) == "389.45"
    assert await d365.find_item("RFI-TEST-001", "usmf") is None


async def test_429_with_retry_after_is_waited_out(d365_sim: D365Sandbox, d365: D365Client, waits: Waits) -> None:
    d365_sim.inject_fault(status=429, retry_after=3, count=2, path="/data/CustomersV3")
    assert await d365.find_customer("US-001", "usmf") is not None
    assert waits.delays == [3.0, 3.0]


async def test_429_past_the_bound_is_retry_later(d365_sim: D365Sandbox, d365: D365Client, waits: Waits) -> None:
    d365_sim.inject_fault(status=429, retry_after=120, path="/data/CustomersV3")
    with pytest.raises(RetryLaterError) as caught:
        await d365.find_customer("US-001", "usmf")
    assert caught.value.delay == 120 and waits.delays == []


async def test_service_protection_limit_is_honoured(d365_sim: D365Sandbox, d365: D365Client, waits: Waits) -> None:
    d365_sim.set_limits(max_requests=2, window_seconds=300, retry_after=5)
    await d365.find_customer("US-001", "usmf")
    await d365.find_customer("US-002", "usmf")
    waits.on_wait = d365_sim.set_limits  # the window resets while the client waits
    assert await d365.find_item("D0001", "usmf") is not None
    assert waits.delays == [5.0]
    assert [r.status for r in _data_gets(d365_sim, "ReleasedProductsV2")] == [429, 200]


async def test_gateway_html_is_retried_then_a_transient_error(d365_sim: D365Sandbox, d365: D365Client) -> None:
    d365_sim.inject_fault(status=502, html=True, count=1, path="/data/ReleasedProductsV2")
    assert await d365.find_item("D0001", "usmf") is not None
    d365_sim.inject_fault(status=502, html=True, count=10, path="/data/ReleasedProductsV2")
    with pytest.raises(TransientError, match="502 Bad Gateway"):
        await d365.find_item("D0001", "usmf")


async def test_open_d365_from_settings_and_secret_store(d365_sim: D365Sandbox) -> None:
    class Secrets:
        async def get(self, name: str) -> str:
            assert name == "d365-client-secret"
            return d365_sim.client_secret

    settings = SimpleNamespace(
        d365_environment_url=d365_sim.base_url, d365_tenant_id=d365_sim.tenant_id, d365_client_id=d365_sim.client_id,
        d365_credential="client_secret", d365_certificate_path=None, d365_authority_host=d365_sim.authority,
        d365_ca_bundle=d365_sim.ca_cert_path, d365_default_legal_entity="usmf", retry_policy=RetryPolicy,
    )  # fmt: skip
    async with await open_d365(settings, Secrets()) as d365:
        assert d365.default_legal_entity == "usmf"
        groups = [r["CustomerGroupId"] async for r in d365.iter_entities("CustomerGroups", legal_entity="usmf")]
    assert sorted(groups) == sorted(
        g["CustomerGroupId"] for g in default_seed()["customer_groups"] if g["dataAreaId"] == "usmf"
    )


async def test_concurrent_401s_renew_the_token_once(d365_sim: D365Sandbox, waits: Waits) -> None:
    auth = make_auth(d365_sim)
    async with make_client(d365_sim, waits, auth=auth) as d365:
        await d365.find_customer("US-001", "usmf")
        d365_sim.expire_tokens()
        found = await asyncio.gather(*(d365.find_customer(a, "usmf") for a in ["US-001", "US-002"] * 3))
    assert all(c is not None for c in found)
    assert auth.renewals == 2  # six requests met a 401; one renewal served them all


async def test_credential_modes_from_settings() -> None:
    from azure.identity.aio import CertificateCredential, ManagedIdentityCredential

    from connector.d365.factory import credential_factory_for
    from connector.errors import ConfigError

    class NoSecrets:
        async def get(self, name: str) -> str:
            raise AssertionError("managed identity and certificate read no secret")

    base = dict(d365_environment_url="https://env.example", d365_tenant_id="t", d365_client_id="c",
                d365_certificate_path=None, d365_authority_host=None, d365_ca_bundle=None)  # fmt: skip
    managed = await credential_factory_for(SimpleNamespace(**base, d365_credential="managed_identity"), NoSecrets())
    credential = managed()
    assert isinstance(credential, ManagedIdentityCredential)
    await credential.close()
    with pytest.raises(ConfigError, match="D365_CERTIFICATE_PATH"):
        await credential_factory_for(SimpleNamespace(**base, d365_credential="certificate"), NoSecrets())
    with pytest.raises(ConfigError, match="D365_CREDENTIAL"):
        await credential_factory_for(SimpleNamespace(**base, d365_credential="password"), NoSecrets())
    assert CertificateCredential  # the certificate path builds azure-identity's CertificateCredential


async def test_master_reads_customers_products_and_names(d365: D365Client) -> None:
    accounts = [c.customer_account async for c in d365.iter_customers("usmf")]
    assert accounts == ["US-001", "US-002"]
    items = {p.item_number: p async for p in d365.iter_released_products("usmf")}
    assert set(items) == {"D0001", " RFI-TEST-001", "P-100"} and items["P-100"].sales_unit_symbol == "pcs"
    names = await d365.product_names("usmf")
    assert names["D0001"] == "MidRangeSpeaker2" and names[" RFI-TEST-001"] == "RFI consulting hours"
    assert (await d365.product_names("demf")) == {"D0001": "Lautsprecher"}


async def test_a_401_after_renewal_is_an_auth_error(d365_sim: D365Sandbox, waits: Waits) -> None:
    from connector.d365.auth import D365TokenAuth, client_secret_factory

    factory = client_secret_factory(
        d365_sim.tenant_id, d365_sim.client_id, d365_sim.client_secret, authority=d365_sim.authority,
        ca_bundle=d365_sim.ca_cert_path,
    )  # fmt: skip
    wrong_audience = D365TokenAuth(factory, "https://contoso.operations.dynamics.com")
    async with make_client(d365_sim, waits, auth=wrong_audience) as d365:
        with pytest.raises(AuthError):
            await d365.find_item("D0001", "usmf")
    assert [r.status for r in d365_sim.requests() if r.path.startswith("/data/")] == [401, 401]
    assert wrong_audience.renewals == 2  # renewed exactly once


async def test_a_token_that_expired_while_its_request_was_resent_is_renewed_again(d365_sim: D365Sandbox) -> None:
    """The retry transport resends after waiting out a 429; a short-lived token can run out meanwhile.
    That 401 says nothing about the credentials: the request renews again and succeeds, where a fresh
    token refused (test above) is an AuthError after one renewal."""
    path = "/data/ReleasedProductsV2"
    waits, skew, jumps = Waits(), [0.0], [2]

    def time_passes() -> None:  # the first two waits outlast the token: D365 refuses it, our clock agrees
        if jumps[0]:
            jumps[0] -= 1
            d365_sim.expire_tokens()
            skew[0] += d365_sim.issuer.lifetime + 1

    issue = d365_sim.issuer.issue

    def issue_and_throttle_once(audience: str) -> tuple[str, int]:
        if d365_sim.issuer.issued == 1:  # the renewed token's first send meets a 429 too
            d365_sim.inject_fault(status=429, retry_after=1, count=1, path=path)
        return issue(audience)

    waits.on_wait = time_passes
    d365_sim.issuer.issue = issue_and_throttle_once  # type: ignore[method-assign]
    d365_sim.inject_fault(status=429, retry_after=1, count=1, path=path)
    auth = make_auth(d365_sim, clock=lambda: time.time() + skew[0])
    async with make_client(d365_sim, waits, auth=auth) as d365:
        assert await d365.find_item("D0001", "usmf") is not None
    assert [r.status for r in d365_sim.requests() if r.path == path] == [429, 401, 429, 401, 200]
    assert auth.renewals == 3
