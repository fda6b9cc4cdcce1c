"""OAuth scopes: the simulator's table is the specs' `security`, entry by entry; every served route has an
entry; a token passes only with a scope its operation lists (`base` always granted, no `admin` shortcut)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.dev.sandbox.pipedrive import PipedriveSandbox
from connector.dev.sandbox.pipedrive.auth import Principal, TokenStore
from connector.dev.sandbox.pipedrive.envelope import ApiError, error_body
from connector.dev.sandbox.pipedrive.models import SeedOAuthClient
from connector.dev.sandbox.pipedrive.scopes import GONE, SCOPES, V1_PREFIXES, missing_entry
from tests.fixtures.reference import PIPEDRIVE_SPECS

ADMIN_DOC = Path(__file__).resolve().parents[2] / "docs" / "admin-pipedrive.md"
needs_specs = pytest.mark.skipif(
    not all((PIPEDRIVE_SPECS / f"openapi-{v}.yaml").is_file() for v in ("v1", "v2")), reason="SPEC-v1/v2 not present"
)
MISMATCH = error_body("Scope and URL mismatch")


def _shape(route: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", route)  # the specs and aiohttp may name a path parameter differently


@cache
def spec_scopes() -> dict[tuple[str, str], frozenset[str]]:
    """(METHOD, route shape) -> the operation's oauth2 scopes, v1 operations under both prefixes."""
    out: dict[tuple[str, str], frozenset[str]] = {}
    for version, prefixes in (("v1", V1_PREFIXES), ("v2", ("/api/v2",))):
        spec: dict[str, Any] = yaml.safe_load((PIPEDRIVE_SPECS / f"openapi-{version}.yaml").read_text("utf-8"))
        for path, item in spec["paths"].items():
            for method, op in item.items():
                if method not in ("get", "post", "patch", "put", "delete"):
                    continue
                oauth = [s["oauth2"] for s in op.get("security", spec.get("security", [])) if "oauth2" in s]
                for prefix in prefixes:
                    out[(method.upper(), _shape(prefix + path))] = frozenset().union(*oauth)
    return out


@needs_specs
@pytest.mark.parametrize(("method", "route"), sorted(SCOPES), ids=lambda v: str(v))
def test_each_entry_is_the_operations_security_in_the_spec(method: str, route: str) -> None:
    documented = spec_scopes()
    assert (method, _shape(route)) in documented, f"{method} {route} is not an operation of SPEC-v1/v2"
    assert SCOPES[(method, route)] == documented[(method, _shape(route))]


@needs_specs
def test_routes_answered_as_gone_are_not_in_the_spec() -> None:
    shapes = {route for _, route in spec_scopes()}
    assert not {_shape(route) for route in GONE} & shapes


def test_every_served_route_has_a_scope_entry(pipedrive_sim: PipedriveSandbox) -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in pipedrive_sim.app.router.routes()
        if route.resource is not None and not route.resource.canonical.startswith(("/_sandbox/", "/oauth/"))
    }
    assert len(served) > 50
    assert not [key for key in sorted(served) if missing_entry(*key)]


def test_a_route_without_an_entry_is_refused_naming_the_gap() -> None:
    principal = Principal("oauth", "t", 1, frozenset({"base", "deals:full", "admin"}))
    with pytest.raises(ApiError) as refused:
        TokenStore.require_scope(principal, "GET", "/api/v2/leads")
    assert refused.value.status == 403 and "no scope entry for GET /api/v2/leads" in refused.value.body["error"]
    TokenStore.require_scope(Principal("api_token", "t", 1), "GET", "/api/v2/leads")  # API tokens are not scoped


def test_default_seed_scope_is_what_the_admin_guide_tells_an_admin_to_grant() -> None:
    text = ADMIN_DOC.read_text(encoding="utf-8")
    table = text[text.index("| Scope | Why |") :].split("\n\n", 1)[0]
    documented = re.findall(r"^\s*\| `([a-z:-]+)` \|", table, flags=re.MULTILINE)
    assert sorted(SeedOAuthClient.model_fields["scope"].default.split(",")) == sorted(documented)


async def _bearer(sim: PipedriveSandbox, client: httpx.AsyncClient, scope: str) -> dict[str, str]:
    code = sim.issue_auth_code("sandbox-client", scope=scope)
    token = (await client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code},
                               auth=("sandbox-client", "sandbox-client-secret"))).json()  # fmt: skip
    assert token["scope"] == scope
    return {"Authorization": f"Bearer {token['access_token']}"}


async def test_product_search_needs_products_or_search_scope(pipedrive_sim: PipedriveSandbox) -> None:
    search = {"term": "pump", "fields": "name"}
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url) as client:
        refused = await client.get(
            "/api/v2/products/search", params=search, headers=await _bearer(pipedrive_sim, client, "deals:full,admin")
        )
        assert (refused.status_code, refused.json()) == (403, MISMATCH)
        for scope in ("search:read", "products:read", "products:full"):
            headers = await _bearer(pipedrive_sim, client, scope)
            response = await client.get("/api/v2/products/search", params=search, headers=headers)
            assert response.status_code == 200, (scope, response.text)


async def test_admin_alone_does_not_read_deals(pipedrive_sim: PipedriveSandbox) -> None:
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url) as client:
        admin = await _bearer(pipedrive_sim, client, "admin")
        for path in ("/api/v2/deals", "/api/v2/deals/1", "/api/v2/organizations", "/api/v2/products"):
            response = await client.get(path, headers=admin)
            assert (response.status_code, response.json()) == (403, MISMATCH), path
        patched = await client.patch("/api/v2/deals/1", json={"title": "x"}, headers=admin)
        assert patched.status_code == 403
        # what SPEC lists `admin` for: webhooks and deal/contact field definitions (not product fields)
        for path, status in [("/v1/webhooks", 200), ("/api/v2/dealFields", 200), ("/api/v2/productFields", 403)]:
            assert (await client.get(path, headers=admin)).status_code == status, path


async def test_base_is_always_granted(pipedrive_sim: PipedriveSandbox) -> None:
    """`/users/me` takes `base` (SPEC-v1), not `users:read`; a token issued without `base` still has it."""
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url) as client:
        headers = await _bearer(pipedrive_sim, client, "deals:read")
        for path in ("/v1/users/me", "/api/v1/users/me", "/v1/currencies"):
            assert (await client.get(path, headers=headers)).status_code == 200, path
        assert (await client.get("/v1/deals", headers=headers)).status_code == 410  # removed: gone for everyone
        assert (await client.get("/api/v2/nothing", headers=headers)).status_code == 404
