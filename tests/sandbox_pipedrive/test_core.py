"""Core API behaviour: auth, envelopes, cursor paging, filters, writes, custom fields, errors."""

from __future__ import annotations

import httpx

from connector.dev.sandbox.pipedrive import PipedriveSandbox

from .conftest import DEAL_CHANNELS, DEAL_FREIGHT, DEAL_ORDER, DEAL_TERMS, ORG_ACCOUNT


async def test_missing_or_wrong_token_is_401_with_documented_body(pipedrive_sim: PipedriveSandbox) -> None:
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url) as client:
        for headers in ({}, {"x-api-token": "wrong"}):
            response = await client.get("/api/v2/deals", headers=headers)
            assert response.status_code == 401
            body = response.json()
            assert body["success"] is False
            assert body["error"] == "unauthorized access"
            assert body["errorCode"] == 401


async def test_cursor_paging_walks_every_deal_once(api: httpx.AsyncClient) -> None:
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/api/v2/deals", params=params)).json()
        assert body["success"] is True
        seen += [deal["id"] for deal in body["data"]]
        pages += 1
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            break
    assert seen == [1, 2, 3, 4]
    assert pages == 4


async def test_status_and_updated_since_filters(api: httpx.AsyncClient, pipedrive_sim: PipedriveSandbox) -> None:
    won = (await api.get("/api/v2/deals", params={"status": "won"})).json()["data"]
    assert [deal["id"] for deal in won] == [2]
    changed = pipedrive_sim.set_deal_status(3, "won")
    params = {"status": "won", "updated_since": changed["update_time"], "sort_by": "update_time"}
    recent = (await api.get("/api/v2/deals", params=params)).json()["data"]
    assert 3 in [deal["id"] for deal in recent]
    until = (await api.get("/api/v2/deals", params={"updated_until": changed["update_time"]})).json()["data"]
    assert 3 not in [deal["id"] for deal in until]


async def test_descending_sort_and_limit_bounds(api: httpx.AsyncClient) -> None:
    body = (await api.get("/api/v2/deals", params={"sort_direction": "desc", "limit": 2})).json()
    assert [deal["id"] for deal in body["data"]] == [4, 3]
    second = await api.get(
        "/api/v2/deals", params={"sort_direction": "desc", "cursor": body["additional_data"]["next_cursor"]}
    )
    assert [deal["id"] for deal in second.json()["data"]] == [2, 1]
    for bad in ({"limit": "501"}, {"limit": "x"}, {"cursor": "!!notacursor"}, {"status": "closed"}):
        response = await api.get("/api/v2/deals", params=bad)
        assert response.status_code == 400, bad
        assert response.json()["success"] is False


async def test_deal_products_single_and_batch(api: httpx.AsyncClient) -> None:
    lines = (await api.get("/api/v2/deals/1/products")).json()["data"]
    assert [line["product_id"] for line in lines] == [1, 3, 4]
    assert lines[1]["sum"] == 89.55  # 19.9 x 5 less 10 %
    batch = (await api.get("/api/v2/deals/products", params={"deal_ids": "1,2"})).json()
    assert sorted({line["deal_id"] for line in batch["data"]}) == [1, 2]
    assert (await api.get("/api/v2/deals/products")).status_code == 400


async def test_custom_fields_shapes_and_labels(api: httpx.AsyncClient) -> None:
    deal = (await api.get("/api/v2/deals/1")).json()["data"]
    assert deal["custom_fields"][DEAL_TERMS] == 33
    assert deal["custom_fields"][DEAL_CHANNELS] == [41, 42]
    assert deal["custom_fields"][DEAL_FREIGHT] == {"value": 120, "currency": "EUR"}
    labelled = (await api.get("/api/v2/deals/1", params={"include_option_labels": "true"})).json()["data"]
    assert labelled["custom_fields"][DEAL_TERMS] == {"id": 33, "label": "DAP"}
    org = (await api.get("/api/v2/organizations/1")).json()["data"]
    assert org["custom_fields"][ORG_ACCOUNT] == "US-001"


async def test_patch_deal_writes_custom_field_and_rejects_bad_values(api: httpx.AsyncClient) -> None:
    response = await api.patch("/api/v2/deals/2", json={"custom_fields": {DEAL_ORDER: "SO-000123"}})
    assert response.status_code == 200
    assert response.json()["data"]["custom_fields"][DEAL_ORDER] == "SO-000123"
    bad_bodies = [
        {DEAL_ORDER: "top-level hash"},  # must be inside custom_fields (client-nodejs#651)
        {"custom_fields": {DEAL_TERMS: 99}},  # not an option id
        {"custom_fields": {DEAL_CHANNELS: []}},  # empty set is rejected
        {"custom_fields": {DEAL_FREIGHT: 120}},  # monetary needs {value, currency}
        {"custom_fields": {"0" * 40: "x"}},  # unknown field
        {"value": "100"},  # v2 does not coerce strings
        {"status": "closed"},
    ]
    for body in bad_bodies:
        rejected = await api.patch("/api/v2/deals/2", json=body)
        assert rejected.status_code == 400, body
        assert rejected.json()["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    malformed = await api.patch("/api/v2/deals/2", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["error"]


async def test_won_status_stamps_times(api: httpx.AsyncClient) -> None:
    deal = (await api.patch("/api/v2/deals/1", json={"status": "won"})).json()["data"]
    assert deal["status"] == "won"
    assert deal["won_time"] is not None and deal["close_time"] == deal["won_time"]
    assert deal["local_won_date"] == deal["won_time"][:10]


async def test_products_create_patch_and_search_by_code(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v2/products", json={"name": "Amplifier", "code": "D0099", "prices": [{"price": 300, "currency": "EUR"}]}
    )
    assert created.status_code == 201
    product = created.json()["data"]
    assert product["prices"] == [
        {"product_id": product["id"], "price": 300, "currency": "EUR", "cost": 0, "direct_cost": 0, "notes": ""}
    ]
    patched = await api.patch(f"/api/v2/products/{product['id']}", json={"prices": [{"price": 310, "currency": "USD"}]})
    assert [p["currency"] for p in patched.json()["data"]["prices"]] == ["USD"]  # the whole array is replaced
    found = await api.get("/api/v2/products/search", params={"term": "d0099", "fields": "code", "exact_match": "true"})
    items = found.json()["data"]["items"]
    assert [item["item"]["id"] for item in items] == [product["id"]]
    partial = await api.get("/api/v2/products/search", params={"term": "D00", "fields": "code", "exact_match": "true"})
    assert partial.json()["data"]["items"] == []
    assert (await api.post("/api/v2/products", json={"name": ""})).status_code == 400
    assert (await api.post("/api/v2/products", json={"name": "X", "prices": [{"currency": "EUR"}]})).status_code == 400


async def test_organizations_persons_and_search(api: httpx.AsyncClient) -> None:
    org = (
        await api.post("/api/v2/organizations", json={"name": "Adatum AB", "custom_fields": {ORG_ACCOUNT: "SE-9"}})
    ).json()["data"]
    assert org["custom_fields"][ORG_ACCOUNT] == "SE-9"
    hits = (await api.get("/api/v2/organizations/search", params={"term": "adatum"})).json()["data"]["items"]
    assert [hit["item"]["id"] for hit in hits] == [org["id"]]
    persons = (await api.get("/api/v2/persons", params={"org_id": 1})).json()["data"]
    assert [p["name"] for p in persons] == ["Aino Virtanen"]
    assert persons[0]["emails"][0]["primary"] is True


async def test_not_found_unknown_path_and_gone_v1(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v2/deals/999")
    assert missing.status_code == 404
    assert missing.json()["success"] is False
    assert (await api.get("/api/v2/nothing-here")).status_code == 404
    assert (await api.get("/v1/deals")).status_code == 410


async def test_field_definitions_v2_and_v1(api: httpx.AsyncClient) -> None:
    v2 = (await api.get("/api/v2/dealFields", params={"limit": 500})).json()["data"]
    terms = next(f for f in v2 if f["field_code"] == DEAL_TERMS)
    assert terms["is_custom_field"] is True
    assert [o["label"] for o in terms["options"]] == ["EXW", "FCA", "DAP"]
    v1 = (await api.get("/v1/dealFields")).json()
    assert next(f for f in v1["data"] if f["key"] == DEAL_TERMS)["edit_flag"] is True
    assert v1["additional_data"]["pagination"]["more_items_in_collection"] is False
    one = await api.get(f"/api/v2/dealFields/{DEAL_FREIGHT}")
    assert one.json()["data"]["field_type"] == "monetary"


async def test_reset_restores_the_seed(api: httpx.AsyncClient, pipedrive_sim: PipedriveSandbox) -> None:
    await api.patch("/api/v2/deals/1", json={"title": "changed"})
    response = await api.post("/_sandbox/reset")
    assert response.status_code == 200
    assert pipedrive_sim.deal(1)["title"] == "Contoso spring order"
    added = pipedrive_sim.seed(
        {"deals": [{"title": "Extra", "products": [{"product_id": 2, "item_price": 1, "quantity": 1}]}]}
    )
    assert added["deals"] == 1
    assert len((await api.get("/api/v2/deals")).json()["data"]) == 5


async def test_delete_is_soft_and_listed_with_status_deleted(api: httpx.AsyncClient) -> None:
    assert (await api.delete("/api/v2/deals/4")).json() == {"success": True, "data": {"id": 4}}
    assert 4 not in [d["id"] for d in (await api.get("/api/v2/deals")).json()["data"]]
    deleted = (await api.get("/api/v2/deals", params={"status": "deleted"})).json()["data"]
    assert [(d["id"], d["is_deleted"]) for d in deleted] == [(4, True)]
    assert (await api.delete("/api/v2/deals/4")).status_code == 404
    assert (await api.delete("/api/v2/products/4")).status_code == 200
    assert 4 not in [p["id"] for p in (await api.get("/api/v2/products")).json()["data"]]


async def test_moving_a_deal_to_a_stage_moves_its_pipeline(api: httpx.AsyncClient) -> None:
    deal = (await api.patch("/api/v2/deals/1", json={"stage_id": 4})).json()["data"]
    assert (deal["stage_id"], deal["pipeline_id"]) == (4, 2)
    assert deal["stage_change_time"] == deal["update_time"]


async def test_archived_deals_are_listed_only_apart_and_cannot_be_edited(
    api: httpx.AsyncClient, pipedrive_sim: PipedriveSandbox
) -> None:
    """Since Jul 15 2025 `/deals` leaves archived deals out; `/deals/archived` (cost 20) lists them with the
    same filters; a single GET still reads one; PATCH refuses it (its exact answer is UNCONFIRMED)."""
    pipedrive_sim.set_deal_status(4, "won")
    archived = pipedrive_sim.change_deal(4, is_archived=True)
    assert archived["archive_time"] == archived["update_time"]
    assert 4 not in [d["id"] for d in (await api.get("/api/v2/deals", params={"status": "won"})).json()["data"]]
    listed = await api.get("/api/v2/deals/archived", params={"status": "won", "sort_by": "update_time"})
    assert [d["id"] for d in listed.json()["data"]] == [4]
    assert [d["id"] for d in (await api.get("/api/v2/deals/archived", params={"status": "open"})).json()["data"]] == []
    assert (await api.get("/api/v2/deals/4")).json()["data"]["is_archived"] is True
    refused = await api.patch("/api/v2/deals/4", json={"title": "edited"})
    assert refused.status_code == 400 and refused.json()["success"] is False
    costs = {e["path"]: e["cost"] for e in pipedrive_sim.requests()}
    assert (costs["/api/v2/deals/archived"], costs["/api/v2/deals"]) == (20, 10)
