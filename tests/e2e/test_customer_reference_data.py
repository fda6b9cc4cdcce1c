"""Customer creates that do not fail on reference data: state/county through the mapping (unmapped ones
left out and audited), and customer accounts from a manual number sequence as well as the automatic one.

The organization is shaped like a real Pipedrive v2 address (`admin_area_level_1` "Harju maakond", the
free text Google's geocoder gives an Estonian county), which is not a D365 state id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.stack import DEMO_MAPPING
from tests.fixtures.stack import E2E, open_e2e

ESTONIAN_ORG = {
    "id": 30, "name": "Tallinna Pumbad OÜ",
    "address": {"value": "Narva mnt 5, 10117 Tallinn, Estonia", "country": "Estonia", "locality": "Tallinn",
                "postal_code": "10117", "route": "Narva mnt", "street_number": "5",
                "admin_area_level_1": "Harju maakond", "admin_area_level_2": "Tallinn"},
}  # fmt: skip


def _deal(deal_id: int, org_id: int) -> dict[str, Any]:
    return {"id": deal_id, "title": "Pumps", "org_id": org_id, "pipeline_id": 1, "stage_id": 2, "owner_id": 1,
            "currency": "USD", "status": "open", "products": [{"product_id": 3, "item_price": 189.5, "quantity": 2}]}  # fmt: skip


def _mapping(tmp_path: Path, **customer: Any) -> Path:
    data = yaml.safe_load(DEMO_MAPPING.read_text())
    data["customer"]["country_map"]["Estonia"] = "EST"
    data["customer"].update(customer)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
async def mapped(azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[E2E]:
    mapping = _mapping(tmp_path, state_map={"EST": {"Harju maakond": "HARJU"}}, account_template="PD-{org_id}")
    async with open_e2e(azurite, monkeypatch, mapping_file=mapping) as e2e:
        e2e.stack.d365.options.customer_accounts = "manual"  # the template is how a manual sequence is fed
        e2e.stack.pipedrive.seed({"organizations": [ESTONIAN_ORG], "deals": [_deal(301, 30)]})
        yield e2e


def _customer(e2e: E2E, name: str) -> list[dict[str, Any]]:
    return [c for c in e2e.stack.d365.records("CustomersV3") if c["OrganizationName"] == name]


async def test_state_is_mapped_county_left_out_and_the_account_comes_from_the_template(mapped: E2E) -> None:
    await mapped.win(301)
    pump = await mapped.drain()
    assert pump.stats.outcomes == {"created": 1}, pump.stats
    [customer] = _customer(mapped, "Tallinna Pumbad OÜ")
    assert customer["CustomerAccount"] == "PD-30"
    assert (customer["AddressCountryRegionId"], customer["AddressState"]) == ("EST", "HARJU")
    assert customer["AddressCounty"] == "" and customer["AddressCity"] == "Tallinn"
    trail = await mapped.rt.state.audit.trail("deal-301")
    [left_out] = [t for t in trail if t.event == "customer.address_left_out"]
    assert left_out.level == "warning"
    assert left_out.detail == {"warnings": [
        "organization 30 'Tallinna Pumbad OÜ': county 'Tallinn' is not in customer.county_map.EST, so it was left "
        "out of the D365 address; add it with its D365 county id to fill it in"
    ]}  # fmt: skip
    assert mapped.orders("PD-301")[0]["InvoiceCustomerAccountNumber"] == "PD-30"


def _existing_pd30(e2e: E2E, name: str) -> None:
    customer = {"dataAreaId": "usmf", "CustomerAccount": "PD-30", "OrganizationName": name, "CustomerGroupId": "30",
                "SalesCurrencyCode": "USD"}  # fmt: skip
    e2e.stack.d365.seed({"customers": [customer]})


async def test_a_manual_account_created_by_a_lost_answer_is_adopted(mapped: E2E) -> None:
    # An earlier attempt created PD-30 but its answer never arrived (and the job kept no trace).
    _existing_pd30(mapped, "Tallinna Pumbad OÜ")
    await mapped.win(301)
    assert (await mapped.drain()).stats.outcomes == {"created": 1}
    assert len(_customer(mapped, "Tallinna Pumbad OÜ")) == 1
    assert mapped.orders("PD-301")[0]["InvoiceCustomerAccountNumber"] == "PD-30"


async def test_a_manual_account_that_belongs_to_someone_else_fails_with_a_reason(mapped: E2E) -> None:
    _existing_pd30(mapped, "Somebody Else Ltd")
    await mapped.win(301)
    assert (await mapped.drain()).stats.outcomes == {"failed": 1}
    job = await mapped.job(301)
    assert job is not None and job.state == "failed"
    assert "customer account 'PD-30' (from customer.account_template) already belongs to 'Somebody Else Ltd'" in (
        job.last_error or ""
    )
    assert mapped.orders("PD-301") == [] and _customer(mapped, "Tallinna Pumbad OÜ") == []


async def test_automatic_sequence_and_an_unmapped_state_left_out(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with open_e2e(azurite, monkeypatch, mapping_file=_mapping(tmp_path)) as e2e:
        e2e.stack.d365.options.customer_accounts = "automatic"
        e2e.stack.pipedrive.seed({"organizations": [ESTONIAN_ORG], "deals": [_deal(301, 30)]})
        await e2e.win(301)
        assert (await e2e.drain()).stats.outcomes == {"created": 1}
        [customer] = _customer(e2e, "Tallinna Pumbad OÜ")
        assert customer["CustomerAccount"].startswith("USMF-") and customer["AddressState"] == ""
        warnings = [
            t.detail for t in await e2e.rt.state.audit.trail("deal-301") if t.event == "customer.address_left_out"
        ]
        assert warnings and "state 'Harju maakond' is not in customer.state_map.EST" in warnings[0]["warnings"][0]
