"""The search routes answer exact searches from an index kept by the store, with an optional lag."""

from __future__ import annotations

import httpx

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
