"""The search routes answer exact searches from an index kept by the store, with an optional lag."""

from __future__ import annotations

import httpx
import pytest

from connector.dev.sandbox.pipedrive.sandbox import PipedriveSandbox


async def _codes(api: httpx.AsyncClient, term: str) -> list[int]:
    params = {"term": term, "fields": "code", "exact_match": "true"}
    answer = await api.get("/api/v2/products/search", params=params)
    assert answer.status_code == 200
    return [item["item"]["id"] for item in answer.json()["data"]["items"]]


async def test_exact_search_follows_creates_updates_and_deletes(
    pipedrive_sim: PipedriveSandbox, api: httpx.AsyncClient
) -> None:
    created = (await api.post("/api/v2/products", json={"name": "Idx", "code": "IDX-1"})).json()["data"]
    assert await _codes(api, "idx-1") == [created["id"]]  # case-insensitive, like Pipedrive
    await api.patch(f"/api/v2/products/{created['id']}", json={"code": "IDX-2"})
    assert await _codes(api, "IDX-1") == []
    assert await _codes(api, "IDX-2") == [created["id"]]
    await api.delete(f"/api/v2/products/{created['id']}")
    assert await _codes(api, "IDX-2") == []


async def test_a_lagging_index_finds_a_write_only_after_the_lag(
    pipedrive_sim: PipedriveSandbox, api: httpx.AsyncClient
) -> None:
    clock = [100.0]
    pipedrive_sim.sim.store.search.clock = lambda: clock[0]
    pipedrive_sim.set_search_lag(30)
    created = (await api.post("/api/v2/products", json={"name": "Lag", "code": "LAG-1"})).json()["data"]
    assert await _codes(api, "LAG-1") == []  # not indexed yet
    listed = (await api.get("/api/v2/products", params={"ids": str(created["id"])})).json()["data"]
    assert [p["code"] for p in listed] == ["LAG-1"]  # a direct read sees it at once
    clock[0] += 30
    assert await _codes(api, "LAG-1") == [created["id"]]


@pytest.mark.parametrize("exact", ["true", "false"])
async def test_search_looks_only_into_searchable_custom_field_types(
    pipedrive_sim: PipedriveSandbox, api: httpx.AsyncClient, exact: str
) -> None:
    """Searchable custom field types: address, varchar, text, varchar_auto, double, monetary, phone
    (pipedrive-api.md, search endpoints): an enum's option id or an int field's value is never a hit."""
    pipedrive_sim.seed(
        {
            "fields": {
                "organization": [
                    {"field_name": "Tier", "field_type": "enum", "options": [{"id": 4242, "label": "Gold"}]},
                    {"field_name": "Staff", "field_type": "int"},
                    {"field_name": "Reference", "field_type": "varchar"},
                ]
            },
            "organizations": [
                {"name": "Searchable Oy", "custom_fields": {"Tier": 4242, "Staff": 777, "Reference": "R-5151"}}
            ],
        }
    )

    async def hits(term: str) -> list[str]:
        params = {"term": term, "fields": "custom_fields", "exact_match": exact}
        response = await api.get("/api/v2/organizations/search", params=params)
        assert response.status_code == 200, response.text
        return [item["item"]["name"] for item in response.json()["data"]["items"]]

    assert await hits("4242") == [] and await hits("777") == []
    assert await hits("R-5151") == ["Searchable Oy"]
