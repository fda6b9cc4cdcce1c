"""Key segments as F&O's web host treats them: decoded once before routing, long URLs refused.

Shapes from public F&O write-ups: `ProductsV2(ProductNumber='105E11%2F74N')` answers 404 with
"No HTTP resource was found that matches the request URI ... No route data was found for this request.",
while `$filter=... eq '105E11%2F74N'` finds the record.
"""

from __future__ import annotations

import httpx
import pytest

from connector.dev.sandbox.d365 import D365Sandbox

ITEM = {"dataAreaId": "usmf", "ItemNumber": "105E11/74N", "ProductType": "Item", "SalesUnitSymbol": "pcs"}


@pytest.fixture(autouse=True)
def _slash_item(d365_sim: D365Sandbox) -> None:
    d365_sim.seed({"released_products": [ITEM]})


@pytest.mark.parametrize("encoded", ["105E11%2F74N", "105E11%2f74N", "105E11%5C74N"])
async def test_a_singly_encoded_slash_in_a_key_finds_no_route(api: httpx.AsyncClient, encoded: str) -> None:
    response = await api.get(f"ReleasedProductsV2(dataAreaId='usmf',ItemNumber='{encoded}')?cross-company=true")
    assert response.status_code == 404
    message = response.json()["Message"]
    assert message.startswith("No HTTP resource was found that matches the request URI")
    assert "ItemNumber='105E11/74N')" in message and "No route data was found" in message


@pytest.mark.parametrize(("value", "shown"), [("A%252FB", "%"), ("A%2BB", "+"), ("A%3AB", ":"), ("A%2AB", "*"),
                                               ("A%26B", "&"), ("A%3FB", "?"), ("A%23B", "#")])  # fmt: skip
async def test_other_reserved_characters_in_a_key_path_are_refused(
    api: httpx.AsyncClient, value: str, shown: str
) -> None:
    response = await api.get(f"ReleasedProductsV2(dataAreaId='usmf',ItemNumber='{value}')?cross-company=true")
    assert response.status_code == 400
    assert (
        response.json()["Message"]
        == f"A potentially dangerous Request.Path value was detected from the client ({shown})."
    )


async def test_the_same_key_by_filter_is_found(api: httpx.AsyncClient) -> None:
    response = await api.get(
        "ReleasedProductsV2?$filter=dataAreaId%20eq%20'usmf'%20and%20ItemNumber%20eq%20'105E11%2F74N'&cross-company=true"
    )
    assert response.status_code == 200
    assert [r["ItemNumber"] for r in response.json()["value"]] == ["105E11/74N"]
    plain = await api.get("ReleasedProductsV2(dataAreaId='usmf',ItemNumber='%20RFI-TEST-001')?cross-company=true")
    assert plain.status_code == 200 and plain.json()["ItemNumber"] == " RFI-TEST-001"


async def test_a_url_past_2048_characters_is_refused(d365_sim: D365Sandbox, api: httpx.AsyncClient) -> None:
    prefix = f"{d365_sim.data_url}/ReleasedProductsV2?$filter="
    clause = "ItemNumber%20eq%20'D0001'"
    fits = clause
    while len(prefix + fits + "%20or%20" + clause) <= 2048:
        fits += "%20or%20" + clause
    ok = await api.get(prefix + fits)
    assert ok.status_code == 200, ok.text
    too_long = await api.get(prefix + fits + "%20or%20" + clause)
    assert too_long.status_code == 404
    assert "404.15" in too_long.text and "query string is too long" in too_long.text
