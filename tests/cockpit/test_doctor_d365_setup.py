"""Doctor rows for D365 setup the simulator does not expose (payment terms, sites, warehouses, units,
dimension formats and values are outside our reference metadata, so the simulator answers 404 and the
doctor warns). Here an OData transport serves those sets with F&O-shaped rows, to show each row fails
with its fix when the name is wrong, and passes when it is right."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connector.api_auth import ApiAuth
from connector.d365.client import D365Client
from connector.doctor.d365 import d365_checks
from connector.mapping.config import parse_mapping

ROWS: dict[str, list[dict[str, Any]]] = {
    "LegalEntities": [{"LegalEntityId": "usmf"}],
    "Currencies": [{"CurrencyCode": "USD"}],
    "CustomerGroups": [{"dataAreaId": "usmf", "CustomerGroupId": "30"}],
    "PaymentTerms": [{"dataAreaId": "usmf", "Name": "Net30"}],
    "OperationalSites": [{"dataAreaId": "usmf", "SiteId": "1"}],
    "Warehouses": [{"dataAreaId": "usmf", "WarehouseId": "11"}],
    "UnitsOfMeasure": [{"UnitSymbol": "ea"}],
    "DimensionIntegrationFormats": [
        {
            "DimensionFormatName": "Default",
            "DimensionFormatType": "DefaultDimensionFormat",
            "IsActive": "Yes",
            "FinancialDimensionFormat": "BusinessUnit-Department",
        }
    ],
    "FinancialDimensionValues": [
        {"FinancialDimension": "BusinessUnit", "LegalEntityId": "", "DimensionValue": "001"},
        {"FinancialDimension": "Department", "LegalEntityId": "", "DimensionValue": "022"},
    ],
    "SalesOrderHeadersV2": [],
}


def odata(request: httpx.Request) -> httpx.Response:
    entity_set = urlsplit(str(request.url)).path.rsplit("/", 1)[-1]
    if entity_set not in ROWS:
        return httpx.Response(404, json={"error": {"code": "", "message": "No HTTP resource was found"}})
    query = parse_qs(urlsplit(str(request.url)).query)
    wanted = dict(re.findall(r"(\w+) eq '((?:[^']|'')*)'", query.get("$filter", [""])[0]))
    rows = [r for r in ROWS[entity_set] if all(str(r.get(k, "")).lower() == v.lower() for k, v in wanted.items())]
    return httpx.Response(200, json={"value": rows})


class NoAuth(ApiAuth):
    """No credentials at all (the doctor has no token to check)."""


MAPPING: dict[str, Any] = {
    "version": 1,
    "legal_entity": {"default": "usmf"},
    "customer": {
        "match_rules": ["name_country"],
        "defaults": {"customer_group": "30", "currency": "USD", "country": "USA", "payment_terms": "Net30"},
    },
    "lines": {"unit": "ea", "site": "1", "warehouse": "11"},
    "dimensions": {
        "order": ["BusinessUnit", "Department"],
        "sources": {
            "BusinessUnit": {"source": "constant", "value": "001"},
            "Department": {"source": "owner", "values": {1: "022"}},
        },
    },
}


async def check(**changes: Any) -> dict[str, Any]:
    data = {**MAPPING, **{k: {**MAPPING.get(k, {}), **v} for k, v in changes.items()}}
    client = D365Client("https://fo.test", NoAuth(), transport=httpx.MockTransport(odata))

    async def d365() -> D365Client:
        return client

    rt = SimpleNamespace(settings=SimpleNamespace(d365_environment_url="https://fo.test"), d365=d365)
    try:
        rows = await d365_checks(rt, parse_mapping(data))  # type: ignore[arg-type]
    finally:
        await client.aclose()
    return {c.name: c for c in rows}


async def test_every_setup_row_passes_when_the_names_exist() -> None:
    rows = await check()
    for name in ("d365.payment_terms usmf", "d365.site usmf", "d365.warehouse usmf", "d365.unit",
                 "d365.dimension_format", "d365.dimension BusinessUnit=001", "d365.dimension Department=022"):  # fmt: skip
        assert rows[name].status == "pass", (name, rows[name])


CASES = [
    ({"customer": {"defaults": {**MAPPING["customer"]["defaults"], "payment_terms": "Net45"}}}, "d365.payment_terms usmf", "correct customer.defaults.payment_terms"),
    ({"lines": {"site": "9"}}, "d365.site usmf", "correct lines.site"),
    ({"lines": {"warehouse": "99"}}, "d365.warehouse usmf", "correct lines.warehouse"),
    ({"lines": {"unit": "box"}}, "d365.unit", "correct lines.unit"),
    ({"dimensions": {"order": ["Department", "BusinessUnit"]}}, "d365.dimension_format", "make dimensions.order and dimensions.delimiter match"),
    ({"dimensions": {"sources": {"BusinessUnit": {"source": "constant", "value": "009"}, "Department": {"source": "owner", "values": {1: "022"}}}}},
     "d365.dimension BusinessUnit=009", "correct dimensions.sources.BusinessUnit.value"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "row", "fix"), CASES, ids=[c[1] for c in CASES])
async def test_a_wrong_name_fails_its_row_with_the_fix(changes: dict[str, Any], row: str, fix: str) -> None:
    rows = await check(**changes)
    assert rows[row].status == "fail", rows[row]
    assert fix in rows[row].fix
    assert [name for name, c in rows.items() if c.status == "fail"] == [row]
