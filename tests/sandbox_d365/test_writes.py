"""POST/PATCH/DELETE: number sequences, foreign keys, duplicates, unknown fields, ETags, $expand."""

from __future__ import annotations

import httpx

from connector.dev.sandbox.d365 import D365Sandbox

WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"


def infolog(response: httpx.Response) -> str:
    error = response.json()["error"]
    assert error["code"] == ""
    assert error["message"] == "An error has occurred."
    assert error["innererror"]["type"] == WRITE_EXCEPTION
    return str(error["innererror"]["message"])


async def test_create_customer_assigns_account_and_returns_full_record(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    body = {"OrganizationName": "A Very Long Company Name Incorporated", "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD", "dataAreaId": "USMF"}  # fmt: skip
    response = await api.post("CustomersV3", json=body)
    assert response.status_code == 201
    record = response.json()
    assert record["CustomerAccount"] == "USMF-000001"
    assert record["dataAreaId"] == "usmf"  # lower case whatever was sent
    assert record["NameAlias"] == "A Very Long Company "  # search name truncated to 20
    assert record["PartyType"] == "Organization"
    assert record["InvoiceAddress"] == "InvoiceAccount"  # default taken from a recorded response
    assert response.headers["Location"].endswith("CustomersV3(dataAreaId='usmf',CustomerAccount='USMF-000001')")
    fetched = await api.get("CustomersV3(dataAreaId='usmf',CustomerAccount='USMF-000001')")
    assert fetched.json()["@odata.etag"] == record["@odata.etag"]


async def test_foreign_keys_are_validated_with_infolog_text(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "CustomersV3", json={"OrganizationName": "X", "CustomerGroupId": "99", "SalesCurrencyCode": "XXX"}
    )
    assert response.status_code == 400
    text = infolog(response)
    assert text.startswith("Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: ")
    assert "The value '99' in field 'Customer group' is not found in the related table 'Customer groups'." in text
    assert "validateField failed on field 'CustCustomerV3Entity.SalesCurrencyCode'." in text
    no_name = await api.post("CustomersV3", json={"CustomerGroupId": "10", "SalesCurrencyCode": "USD"})
    assert "Mandatory field 'Organization name' not set." in infolog(no_name)
    line = await api.post("SalesOrderLines", json={"SalesOrderNumber": "NOPE", "ItemNumber": "GHOST"})
    text = infolog(line)
    assert "'NOPE' in field 'Sales order'" in text
    assert "'GHOST' in field 'Item number' is not found in the related table 'Items'" in text


async def test_duplicate_natural_key_gives_the_record_already_exists(api: httpx.AsyncClient) -> None:
    response = await api.post("CustomerGroups", json={"CustomerGroupId": "10", "Description": "again"})
    assert response.status_code == 400
    assert infolog(response) == (
        "Write failed for table row of type 'CustCustomerGroupEntity'. Infolog: Info: Cannot create a record in "
        "Customer groups (CustGroup). Customer group: 10, again.\nThe record already exists.."
    )


async def test_unknown_fields_and_bad_types_are_rejected(api: httpx.AsyncClient) -> None:
    unknown = await api.post("CustomersV3", json={"Name": "x"})
    assert unknown.status_code == 400
    assert (
        "The property 'Name' does not exist on type 'Microsoft.Dynamics.DataEntities.CustomerV3'"
        in (unknown.json()["error"]["message"])
    )
    bad_type = await api.post("ReleasedProductsV2", json={"ItemNumber": "X1", "SalesPrice": "cheap"})
    assert bad_type.status_code == 400
    assert "Edm.Decimal" in bad_type.json()["error"]["message"]
    bad_enum = await api.post("ReleasedProductsV2", json={"ItemNumber": "X1", "ProductType": "Gadget"})
    assert "EcoResProductType" in bad_enum.json()["error"]["message"]
    not_json = await api.post("CustomersV3", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["error"]["message"]
    bad_select = await api.get("CustomersV3", params={"$select": "CustomerAccount,Nmae"})
    assert bad_select.status_code == 400
    assert "'Nmae'" in bad_select.json()["error"]["message"]


async def test_sales_order_header_lines_expand_patch_delete(d365_sim: D365Sandbox, api: httpx.AsyncClient) -> None:
    header = (
        await api.post(
            "SalesOrderHeadersV2",
            json={"OrderingCustomerAccountNumber": "US-001", "CustomersOrderReference": "deal-42",
                  "RequestedShippingDate": "2026-08-01T09:30:00Z"},
        )
    ).json()  # fmt: skip
    number = header["SalesOrderNumber"]
    assert header["CurrencyCode"] == "USD"
    assert header["RequestedShippingDate"] == "2026-08-01T12:00:00Z"  # date-only field
    assert header["SalesOrderName"] == "Contoso Retail San Diego"
    line = await api.post(
        "SalesOrderLines",
        json={"SalesOrderNumber": number, "ItemNumber": " RFI-TEST-001", "OrderedSalesQuantity": 2,
              "DefaultLedgerDimensionDisplayValue": "001--022"},
    )  # fmt: skip
    assert line.status_code == 201
    created = line.json()
    assert (created["LineNumber"], created["SalesUnitSymbol"], created["LineAmount"]) == (1, "hr", 778.9)
    assert created["InventoryLotId"] == "USMF-000001"
    bad_dim = await api.post(
        "SalesOrderLines",
        json={"SalesOrderNumber": number, "ItemNumber": "D0001", "DefaultLedgerDimensionDisplayValue": "999"},
    )
    assert "'999' of the 'BusinessUnit' financial dimension" in infolog(bad_dim)
    expanded = await api.get(
        f"SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='{number}')", params={"$expand": "SalesOrderLines"}
    )
    assert [ln["ItemNumber"] for ln in expanded.json()["SalesOrderLines"]] == [" RFI-TEST-001"]
    narrow = await api.get(
        f"SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='{number}')",
        params={"$select": "SalesOrderNumber", "$expand": "SalesOrderLines($select=ItemNumber,LineAmount)"},
    )
    assert narrow.json()["SalesOrderLines"][0].keys() == {"@odata.etag", "ItemNumber", "LineAmount"}
    bad_nav = await api.get("SalesOrderHeadersV2", params={"$expand": "Lines"})
    assert bad_nav.status_code == 400 and "'Lines'" in bad_nav.json()["error"]["message"]
    found = await api.get(
        "SalesOrderHeadersV2", params={"$filter": "CustomersOrderReference eq 'deal-42'", "$select": "SalesOrderNumber"}
    )
    assert found.json()["value"][0]["SalesOrderNumber"] == number
    key = f"SalesOrderLines(dataAreaId='usmf',InventoryLotId='{created['InventoryLotId']}')"
    assert (await api.patch(key, json={"OrderedSalesQuantity": 3})).status_code == 204
    assert d365_sim.sales_orders()[0]["SalesOrderLines"][0]["LineAmount"] == 1168.35
    stale = await api.patch(key, json={"LineDescription": "x"}, headers={"If-Match": created["@odata.etag"]})
    assert stale.status_code == 412
    assert (await api.delete(f"SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='{number}')")).status_code == 204
    assert d365_sim.sales_orders() == []
    assert d365_sim.records("SalesOrderLines") == []


async def test_patch_in_other_company_needs_cross_company(api: httpx.AsyncClient) -> None:
    key = "CustomersV3(dataAreaId='demf',CustomerAccount='DE-001')"
    assert (await api.patch(key, json={"AddressCity": "Berlin"})).status_code == 404
    assert (await api.patch(key + "?cross-company=true", json={"AddressCity": "Berlin"})).status_code == 204
    changed = await api.get(key, params={"cross-company": "true", "$select": "AddressCity"})
    assert changed.json()["AddressCity"] == "Berlin"
    bad_group = await api.patch(key + "?cross-company=true", json={"CustomerGroupId": "30"})
    assert "'30' in field 'Customer group'" in infolog(bad_group)  # group 30 exists only in usmf


async def test_customer_party_rules_are_strict(api: httpx.AsyncClient) -> None:
    common = {"CustomerGroupId": "10", "SalesCurrencyCode": "USD"}
    nameless = await api.post("CustomersV3", json={**common, "PartyType": "Person"})
    assert "Mandatory field 'Name' not set." in infolog(nameless)
    assert (await api.post("CustomersV3", json={**common, "PartyType": "Person", "PersonLastName": "Ek"})).is_success
    odd = await api.post("CustomersV3", json={**common, "PartyType": "Team", "OrganizationName": "X"})
    assert "'Team' is not a valid party type" in infolog(odd)
    no_country = await api.post("CustomersV3", json={**common, "OrganizationName": "X", "AddressDescription": "HQ"})
    assert "Field 'Country/region' must be filled in." in infolog(no_country)
