"""D365Client writes against the simulator: atomic header+lines, duplicates, Infolog errors, 429 in $batch."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from connector.d365.batch import Operation
from connector.d365.client import D365Client
from connector.d365.models import CustomerCreate, SalesOrderHeaderCreate, SalesOrderLineCreate
from connector.dev.sandbox.d365 import D365Sandbox
from connector.errors import (
    ConfigError,
    DuplicateError,
    RetryLaterError,
    TransientError,
    UnknownOutcomeError,
    ValidationError,
)

from .conftest import Waits


def _header(number: str | None = "SO-T-1", reference: str = "PD-DEAL-42") -> SalesOrderHeaderCreate:
    return SalesOrderHeaderCreate(
        data_area_id="usmf",
        sales_order_number=number,
        ordering_customer_account_number="US-001",
        currency_code="USD",
        customers_order_reference=reference,
        requested_shipping_date=date(2026, 12, 1),
        default_ledger_dimension_display_value="001-022-",
    )


def _line(item: str, qty: str = "2") -> SalesOrderLineCreate:
    return SalesOrderLineCreate(
        data_area_id="usmf", item_number=item, ordered_sales_quantity=Decimal(qty), sales_price=Decimal("10.50"),
        line_description=f"line {item.strip()}",
    )  # fmt: skip


def _batch_posts(sim: D365Sandbox) -> int:
    return sum(1 for r in sim.requests() if r.path == "/data/$batch" and not r.in_batch)


@pytest.fixture(autouse=True)
def _manual_order_numbers(d365_sim: D365Sandbox) -> None:
    """These orders carry their own number (SO-T-1, the `from_deal` setup): the sequence must allow it."""
    d365_sim.set_number_sequences(manual_sales_order_numbers=True)


async def test_header_and_lines_in_one_changeset(d365_sim: D365Sandbox, d365: D365Client) -> None:
    number, lines = await d365.create_sales_order(_header(), [_line("D0001"), _line(" RFI-TEST-001", "1.5")])
    assert number == "SO-T-1"
    assert [line.item_number for line in lines] == ["D0001", " RFI-TEST-001"]
    assert all(line.inventory_lot_id and line.sales_order_number == "SO-T-1" for line in lines)
    assert _batch_posts(d365_sim) == 1
    found = await d365.find_order_by_reference("PD-DEAL-42", "usmf")
    assert found is not None and found.sales_order_number == "SO-T-1"
    assert [line.ordered_sales_quantity for line in found.lines] == [Decimal(2), Decimal("1.5")]
    assert found.default_ledger_dimension_display_value == "001-022-"
    assert await d365.find_order_by_reference("PD-DEAL-4*", "usmf") is None  # wildcard never adopts a neighbour


async def test_number_sequence_order_is_a_header_then_its_lines(d365_sim: D365Sandbox, d365: D365Client) -> None:
    header = await d365.create_order_header(_header(number=None))
    number = header.sales_order_number
    assert number.lower().startswith("usmf-")
    lines = await d365.add_order_lines("usmf", number, [_line("D0001"), _line(" RFI-TEST-001", "3")])
    in_batch = [r for r in d365_sim.requests() if r.in_batch]
    assert [r.path for r in in_batch] == [f"{d365_sim.data_url}/SalesOrderLines"] * 2  # no `$n` reference
    assert all(r.body["SalesOrderNumber"] == number for r in in_batch)
    assert [line.sales_order_number for line in lines] == [number, number]
    found = await d365.get_order(number, "usmf")
    assert found is not None and [line.item_number for line in found.lines] == ["D0001", " RFI-TEST-001"]
    assert await d365.get_order("NO-SUCH-ORDER", "usmf") is None


async def test_one_changeset_needs_the_number_on_the_header(d365: D365Client) -> None:
    with pytest.raises(ConfigError, match="order number"):
        await d365.create_sales_order(_header(number=None), [_line("D0001")])


async def test_a_failing_second_line_leaves_no_header(d365_sim: D365Sandbox, d365: D365Client) -> None:
    before = d365_sim.sales_orders("usmf")
    with pytest.raises(ValidationError) as caught:
        await d365.create_sales_order(_header(), [_line("D0001"), _line("NO-SUCH-ITEM")])
    assert any("NO-SUCH-ITEM" in line for line in caught.value.lines), caught.value.lines
    assert d365_sim.sales_orders("usmf") == before
    assert await d365.find_order_by_reference("PD-DEAL-42", "usmf") is None
    assert _batch_posts(d365_sim) == 1  # a business error is not retried


async def test_duplicate_creates_map_to_duplicate_error(d365: D365Client) -> None:
    with pytest.raises(DuplicateError, match="The record already exists"):
        await d365.create_customer(
            CustomerCreate(data_area_id="usmf", customer_account="US-001", organization_name="Again",
                           customer_group_id="10", sales_currency_code="USD")
        )  # fmt: skip
    await d365.create_sales_order(_header(), [_line("D0001")])
    with pytest.raises(DuplicateError):
        await d365.create_sales_order(_header(reference="other"), [_line("D0001")])


async def test_create_customer_takes_the_number_sequence(d365: D365Client) -> None:
    created = await d365.create_customer(
        CustomerCreate(data_area_id="USMF", organization_name="Fourth Coffee", customer_group_id="30",
                       sales_currency_code="usd", address_country_region_id="USA")
    )  # fmt: skip
    assert created.customer_account and created.data_area_id == "usmf"
    again = await d365.find_customers_by_name("Fourth Coffee", "USA", "usmf")
    assert [c.customer_account for c in again] == [created.customer_account]


async def test_validation_error_lines_are_readable_and_not_retried(d365_sim: D365Sandbox, d365: D365Client) -> None:
    with pytest.raises(ValidationError) as caught:
        await d365.create_customer(
            CustomerCreate(
                data_area_id="usmf", organization_name="X", customer_group_id="NOPE", sales_currency_code="USD"
            )
        )
    assert any("'NOPE'" in line and "Customer group" in line for line in caught.value.lines), caught.value.lines
    assert sum(1 for r in d365_sim.requests() if r.method == "POST" and r.path == "/data/CustomersV3") == 1


async def test_unknown_field_in_a_raw_payload_is_a_validation_error(d365: D365Client) -> None:
    with pytest.raises(ValidationError):
        await d365.create("CustomersV3", {"dataAreaId": "usmf", "OrganizationName": "X", "Name": "X",
                                          "CustomerGroupId": "10", "SalesCurrencyCode": "USD"})  # fmt: skip


async def test_update_and_delete_by_full_key(d365: D365Client) -> None:
    await d365.update("CustomersV3", {"dataAreaId": "demf", "CustomerAccount": "DE-001"}, {"AddressCity": "Köln"})
    customer = await d365.find_customer("DE-001", "demf")
    assert customer is not None and customer.address_city == "Köln"
    await d365.delete("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "30"})
    assert [
        g async for g in d365.iter_entities("CustomerGroups", filter="CustomerGroupId eq '30'", legal_entity="usmf")
    ] == []


async def test_429_inside_a_batch_part_is_waited_out(d365_sim: D365Sandbox, d365: D365Client, waits: Waits) -> None:
    d365_sim.inject_fault(status=429, retry_after=4, where="batch_part")
    number, _ = await d365.create_sales_order(_header(), [_line("D0001")])
    assert number == "SO-T-1" and waits.delays == [4.0]
    assert len([o for o in d365_sim.sales_orders("usmf") if o["SalesOrderNumber"] == "SO-T-1"]) == 1


async def test_429_inside_a_batch_part_past_the_bound_is_retry_later(
    d365_sim: D365Sandbox, d365: D365Client, waits: Waits
) -> None:
    d365_sim.inject_fault(status=429, retry_after=600, where="batch_part")
    with pytest.raises(RetryLaterError) as caught:
        await d365.create_sales_order(_header(), [_line("D0001")])
    assert caught.value.delay == 600
    assert not [o for o in d365_sim.sales_orders("usmf") if o["SalesOrderNumber"] == "SO-T-1"]


async def test_execute_changeset_returns_each_result(d365: D365Client) -> None:
    results = await d365.execute_changeset(
        [Operation(method="POST", path="CustomerGroups", body={"dataAreaId": "usmf", "CustomerGroupId": "90"}),
         Operation(method="PATCH", path="CustomerGroups(dataAreaId='usmf',CustomerGroupId='90')",
                   body={"Description": "Ninety"})]
    )  # fmt: skip
    assert results[0]["CustomerGroupId"] == "90" and results[1] == {}


async def test_a_gateway_error_on_the_batch_post_is_not_resent(d365_sim: D365Sandbox, d365: D365Client) -> None:
    # The write may have committed behind the gateway: the caller looks it up before trying again.
    d365_sim.inject_fault(status=502, html=True, path="/data/$batch")
    with pytest.raises(TransientError, match="502 Bad Gateway"):
        await d365.create_sales_order(_header(), [_line("D0001")])
    assert _batch_posts(d365_sim) == 1
    assert await d365.find_order_by_reference("PD-DEAL-42", "usmf") is None
    number, _ = await d365.create_sales_order(_header(), [_line("D0001")])
    assert number == "SO-T-1"


async def test_gateway_html_instead_of_a_batch_answer(d365_sim: D365Sandbox, d365: D365Client) -> None:
    d365_sim.inject_fault(status=200, html=True, path="/data/$batch")
    # The client cannot tell a portal's page from a cut answer of a saved write: it may have been saved.
    with pytest.raises(UnknownOutcomeError, match="not multipart"):
        await d365.create_sales_order(_header(), [_line("D0001")])
