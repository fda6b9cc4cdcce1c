"""Token endpoint through azure-identity, bearer checks, reads with query options and paging."""

from __future__ import annotations

import httpx
from azure.identity.aio import ClientSecretCredential

from connector.dev.sandbox.d365 import D365Sandbox


async def test_token_via_azure_identity_is_accepted_and_scoped_to_environment(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    response = await api.get("CustomersV3")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{d365_sim.base_url}/data/$metadata#CustomersV3"
    accounts = [r["CustomerAccount"] for r in body["value"]]
    assert accounts == ["US-001", "US-002"]  # default company only
    assert all(r["dataAreaId"] == "usmf" for r in body["value"])
    assert body["value"][0]["@odata.etag"].startswith('W/"')
    assert len(body["value"][0]) == len(d365_sim.store.entity("CustomersV3").properties) + 1


async def test_missing_wrong_audience_and_expired_tokens_get_401(d365_sim: D365Sandbox) -> None:
    async with httpx.AsyncClient(verify=d365_sim.ssl_context()) as client:
        assert (await client.get(f"{d365_sim.data_url}/Currencies")).status_code == 401
        wrong, _ = d365_sim.issuer.issue("https://other.operations.dynamics.com")
        response = await client.get(f"{d365_sim.data_url}/Currencies", headers={"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 401
        assert "audience" in response.headers["WWW-Authenticate"]
        good, _ = d365_sim.issuer.issue(d365_sim.base_url)
        headers = {"Authorization": f"Bearer {good}"}
        assert (await client.get(f"{d365_sim.data_url}/Currencies", headers=headers)).status_code == 200
        d365_sim.expire_tokens()
        expired = await client.get(f"{d365_sim.data_url}/Currencies", headers=headers)
        assert expired.status_code == 401
        assert "expired" in expired.headers["WWW-Authenticate"]


async def test_token_endpoint_refuses_bad_secret_and_supports_v1_resource_form(d365_sim: D365Sandbox) -> None:
    bad = ClientSecretCredential(
        d365_sim.tenant_id, d365_sim.client_id, "wrong", authority=d365_sim.authority,
        disable_instance_discovery=True, connection_verify=d365_sim.ca_cert_path,
    )  # fmt: skip
    async with bad:
        try:
            await bad.get_token(d365_sim.scope)
        except Exception as exc:  # azure-identity wraps it in ClientAuthenticationError
            assert "AADSTS7000215" in str(exc)
            assert "wrong" not in str(exc)
        else:
            raise AssertionError("a wrong secret must be refused")
    async with httpx.AsyncClient(verify=d365_sim.ssl_context()) as client:
        form = {"grant_type": "client_credentials", "client_id": d365_sim.client_id,
                "client_secret": d365_sim.client_secret, "resource": d365_sim.base_url}  # fmt: skip
        response = await client.post(f"{d365_sim.authority}/{d365_sim.tenant_id}/oauth2/token", data=form)
        assert response.status_code == 200
        token = response.json()["access_token"]
        data = await client.get(f"{d365_sim.data_url}/Currencies", headers={"Authorization": f"Bearer {token}"})
        assert data.status_code == 200
    assert all("secret" not in str(entry.model_dump()) for entry in d365_sim.requests())


async def test_cross_company_and_key_lookup_with_leading_space(api: httpx.AsyncClient) -> None:
    default = await api.get("CustomersV3", params={"$filter": "CustomerAccount eq 'DE-001'"})
    assert default.json()["value"] == []
    cross = await api.get("CustomersV3", params={"$filter": "CustomerAccount eq 'DE-001'", "cross-company": "true"})
    assert [r["dataAreaId"] for r in cross.json()["value"]] == ["demf"]
    missing = await api.get("CustomersV3(dataAreaId='demf',CustomerAccount='DE-001')")
    assert missing.status_code == 404
    found = await api.get("CustomersV3(dataAreaId='demf',CustomerAccount='DE-001')?cross-company=true")
    assert found.status_code == 200
    assert found.json()["@odata.context"].endswith("#CustomersV3/$entity")
    item = await api.get("ReleasedProductsV2(dataAreaId='usmf',ItemNumber='%20RFI-TEST-001')")
    assert item.status_code == 200
    assert item.json()["ItemNumber"] == " RFI-TEST-001"
    assert item.json()["SellStartDate"] == "1900-01-01T12:00:00Z"
    partial_key = await api.get("CustomersV3('US-001')")
    assert partial_key.status_code == 400
    assert "number of keys" in partial_key.json()["error"]["message"]


async def test_paging_follows_next_link_with_select_orderby_count(d365_sim: D365Sandbox) -> None:
    async with D365Sandbox(page_size=2) as small, ClientSecretCredential(
        small.tenant_id, small.client_id, small.client_secret, authority=small.authority,
        disable_instance_discovery=True, connection_verify=small.ca_cert_path,
    ) as cred:  # fmt: skip
        token = (await cred.get_token(small.scope)).token
        async with httpx.AsyncClient(verify=small.ssl_context(), headers={"Authorization": f"Bearer {token}"}) as c:
            url: str | None = f"{small.data_url}/ReleasedProductsV2"
            params = {"cross-company": "true", "$select": "dataAreaId,ItemNumber", "$count": "true",
                      "$orderby": "dataAreaId desc,ItemNumber"}  # fmt: skip
            seen = []
            pages = 0
            while url:
                body = (await c.get(url, params=params if pages == 0 else None)).json()
                assert body["@odata.count"] == 4
                assert body["@odata.context"].endswith("#ReleasedProductsV2(dataAreaId,ItemNumber)")
                seen += [(r["dataAreaId"], r["ItemNumber"]) for r in body["value"]]
                url = body.get("@odata.nextLink")
                pages += 1
            assert pages == 2
            assert seen == [("usmf", " RFI-TEST-001"), ("usmf", "D0001"), ("usmf", "P-100"), ("demf", "D0001")]
            top = (
                await c.get(
                    f"{small.data_url}/Currencies", params={"$top": "1", "$skip": "1", "$orderby": "CurrencyCode"}
                )
            ).json()
            assert [r["CurrencyCode"] for r in top["value"]] == ["GBP"]
            assert "@odata.nextLink" not in top
            count = await c.get(f"{small.data_url}/Currencies/$count")
            assert count.text == "3"


async def test_product_names_come_from_released_product_creations(api: httpx.AsyncClient) -> None:
    released = (await api.get("ReleasedProductsV2(dataAreaId='usmf',ItemNumber='D0001')")).json()
    assert "ProductName" not in released
    names = await api.get("ReleasedProductCreationsV2", params={"$select": "ItemNumber,ProductName"})
    assert {r["ItemNumber"]: r["ProductName"] for r in names.json()["value"]}["D0001"] == "MidRangeSpeaker2"


async def test_metadata_document_lists_sets_keys_and_enums(api: httpx.AsyncClient) -> None:
    import xml.etree.ElementTree as ET

    response = await api.get("$metadata")
    assert response.status_code == 200
    root = ET.fromstring(response.text)
    ns = {"e": "http://docs.oasis-open.org/odata/ns/edm"}
    lines = root.find(".//e:EntityType[@Name='SalesOrderLine']", ns)
    assert lines is not None
    assert [r.attrib["Name"] for r in lines.findall("e:Key/e:PropertyRef", ns)] == ["dataAreaId", "InventoryLotId"]
    assert root.find(".//e:EnumType[@Name='NoYes']/e:Member[@Name='Yes']", ns) is not None
    assert root.find(".//e:EntitySet[@Name='CustomersV3']", ns) is not None


async def test_entity_set_names_are_case_sensitive(api: httpx.AsyncClient) -> None:
    assert (await api.get("customersv3")).status_code == 404
    assert (await api.get("SalesOrderLinesV2")).status_code == 404  # no such set in the real metadata
