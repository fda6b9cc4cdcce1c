"""v2 query parameters: the simulator takes only what SPEC-v2 lists per operation, in the documented form.

Each refusal fails if the simulator became kind again (silently ignoring `start=`, a v1 habit, or a
fractional `updated_since`); the client's own calls are checked against the same rules in tests/pipedrive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import httpx
import pytest
import yaml

from connector.dev.sandbox.pipedrive import PipedriveSandbox
from connector.dev.sandbox.pipedrive.query_params import NOT_SIMULATED, V2_QUERY
from connector.pipedrive.auth import ApiTokenAuth
from connector.pipedrive.client import PipedriveClient
from tests.fixtures.reference import PIPEDRIVE_SPECS

needs_spec = pytest.mark.skipif(not (PIPEDRIVE_SPECS / "openapi-v2.yaml").is_file(), reason="SPEC-v2 not present")


@cache
def spec_query_params() -> dict[tuple[str, str], frozenset[str]]:
    spec: dict[str, Any] = yaml.safe_load((PIPEDRIVE_SPECS / "openapi-v2.yaml").read_text(encoding="utf-8"))
    shared = spec["components"].get("parameters", {})
    out: dict[tuple[str, str], frozenset[str]] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            params = [shared[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p for p in op.get("parameters", [])]
            out[(method.upper(), "/api/v2" + path)] = frozenset(p["name"] for p in params if p["in"] == "query")
    return out


@needs_spec
@pytest.mark.parametrize(("method", "route"), sorted(V2_QUERY), ids=lambda v: str(v))
def test_every_parameter_the_simulator_takes_is_in_spec_v2(method: str, route: str) -> None:
    documented = spec_query_params()
    assert (method, route) in documented, f"{method} {route} is not an operation of SPEC-v2"
    assert V2_QUERY[(method, route)] <= documented[(method, route)]


@needs_spec
def test_parameters_named_as_not_simulated_are_documented() -> None:
    documented = frozenset().union(*(spec_query_params()[key] for key in V2_QUERY))
    assert documented >= NOT_SIMULATED


def test_every_v2_read_route_declares_its_parameters(pipedrive_sim: PipedriveSandbox) -> None:
    routes = {
        (route.method, route.resource.canonical)
        for route in pipedrive_sim.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/v2/") and route.method == "GET"
    }
    assert routes <= set(V2_QUERY), sorted(routes - set(V2_QUERY))


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v2/deals", {"start": "0"}, "Parameter 'start' is not allowed"),  # v1 offset paging
        ("/api/v2/deals", {"sort": "update_time ASC"}, "Parameter 'sort' is not allowed"),  # v1 sorting
        ("/api/v2/deals", {"api_token": "x"}, "Parameter 'api_token' is not allowed"),
        ("/api/v2/products", {"updated_until": "2025-01-01T00:00:00Z"}, "Parameter 'updated_until'"),  # deals only
        ("/api/v2/products/1", {"custom_fields": "x"}, "Parameter 'custom_fields' is not allowed"),
        ("/api/v2/deals", {"filter_id": "1"}, "does not implement the query parameter 'filter_id'"),
        ("/api/v2/deals", {"updated_since": "2025-01-01T10:20:00.5Z"}, "not a valid datetime"),
        ("/api/v2/deals", {"updated_since": "2025-01-01 10:20:00Z"}, "not a valid datetime"),
        ("/api/v2/deals", {"updated_since": "2025-01-01T10:20:00"}, "not a valid datetime"),
        ("/api/v2/organizations", {"updated_until": "2025-01-01"}, "not a valid datetime"),
    ],
)
async def test_unknown_parameters_and_loose_timestamps_are_refused(
    api: httpx.AsyncClient, path: str, params: dict[str, str], message: str
) -> None:
    response = await api.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and message in body["error"], body


async def test_documented_parameters_and_timestamps_are_taken(api: httpx.AsyncClient) -> None:
    for path, params in [
        ("/api/v2/deals", {"updated_since": "2025-01-01T10:20:00Z", "updated_until": "2099-01-01T00:00:00+02:00"}),
        ("/api/v2/products", {"updated_since": "2025-01-01T10:20:00Z", "sort_by": "id", "limit": "5"}),
        ("/api/v2/organizations/search", {"term": "contoso", "fields": "name", "exact_match": "false"}),
    ]:
        response = await api.get(path, params=params)
        assert response.status_code == 200, response.text


async def test_the_client_sends_whole_second_timestamps(pipedrive_sim: PipedriveSandbox) -> None:
    """A poll watermark with microseconds is sent in the documented whole-second form."""
    since = datetime(2000, 1, 1, 0, 0, 0, 654321, tzinfo=UTC)
    async with PipedriveClient(pipedrive_sim.base_url, ApiTokenAuth(pipedrive_sim.api_token)) as client:
        [deal.id async for deal in client.iter_won_deals(since, until=datetime.now(UTC))]
        assert [p.id async for p in client.iter_products(updated_since=since)]
    sent = [e for e in pipedrive_sim.requests() if "updated_since" in e["query"]]
    assert len(sent) == 2 and all(e["status"] == 200 for e in sent)
    assert {e["query"]["updated_since"] for e in sent} == {"2000-01-01T00:00:00Z"}
