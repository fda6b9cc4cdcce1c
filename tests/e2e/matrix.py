"""The configuration matrix the invariant suite runs in: every supported way to number and reference an
order, each with deals in the default company (usmf, pipeline 1) and a second one (demf, pipeline 2).

A new numbering mode or reference field joins the matrix by one entry in NUMBERING or REFERENCE_FIELDS.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.demo_data import PRODUCTS, pipedrive_seed
from connector.dev.sandbox.stack import DEMO_MAPPING
from connector.flows.context import step_subject
from tests.fixtures.stack import E2E, open_e2e

NUMBERING = ("from_deal", "d365_sequence")
REFERENCE_FIELDS = ("CustomersOrderReference", "CustomerRequisitionNumber")
# Steps every order build passes, and those only one numbering mode has.
COMMON_STEPS = ("claimed", "deal_read", "before_customer_create", "after_customer_create", "customer_resolved",
                "before_create", "after_create", "recorded")  # fmt: skip
MODE_STEPS = {"from_deal": (), "d365_sequence": ("after_header", "before_lines")}
FIRST_EXTRA_DEAL = 201


@dataclass(frozen=True)
class Cell:
    numbering: str
    reference_field: str

    @property
    def id(self) -> str:
        return f"{self.numbering}-{'order_ref' if self.reference_field == 'CustomersOrderReference' else 'requisition'}"

    @property
    def steps(self) -> tuple[str, ...]:
        return COMMON_STEPS + MODE_STEPS[self.numbering]

    def mapping(self, folder: Path) -> Path:
        data = yaml.safe_load(DEMO_MAPPING.read_text(encoding="utf-8"))
        order = data["order"]
        order["numbering"] = self.numbering
        order["reference_field"] = self.reference_field
        if self.numbering == "from_deal":
            order["number_template"] = "PD{deal_id}"
        else:
            order.pop("number_template", None)
        path = folder / f"mapping-{self.id}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path


CELLS = [Cell(n, r) for n in NUMBERING for r in REFERENCE_FIELDS]
ALL_STEPS = sorted({step for steps in MODE_STEPS.values() for step in steps} | set(COMMON_STEPS))


@dataclass(frozen=True)
class ExtraDeal:
    deal_id: int
    pipeline_id: int  # 1 -> usmf (USD), 2 -> demf (EUR)
    person_only: bool
    lines: int


def extra_deals(count: int) -> list[ExtraDeal]:
    """Deals of new customers, alternating between the two companies; every fourth one has only a person."""
    return [ExtraDeal(FIRST_EXTRA_DEAL + i, 1 + i % 2, i % 4 == 3, 1 + i % 3) for i in range(count)]


def matrix_seed(deals: list[ExtraDeal]) -> dict[str, Any]:
    """The demo data plus one new organization (or lone person) and won-able deal per ExtraDeal."""
    seed = pipedrive_seed()
    for deal in deals:
        n = deal.deal_id
        usd = deal.pipeline_id == 1
        org_id = None
        if not deal.person_only:
            org_id = n
            country, city = ("United States", "Austin") if usd else ("Germany", "Hamburg")
            seed["organizations"].append(
                {"id": n, "name": f"Matrix Customer {n}", "owner_id": 1,
                 "address": {"value": f"{city}, {country}", "country": country, "locality": city}}
            )  # fmt: skip
        seed["persons"].append(
            {"id": n, "name": f"Person {n} Matrix", "org_id": org_id,
             "emails": [{"value": f"p{n}@matrix.example", "primary": True, "label": "work"}],
             "phones": [{"value": f"+1 555 {n:04d}", "primary": True, "label": "work"}]}
        )  # fmt: skip
        products = [
            {"product_id": k + 1, "item_price": PRODUCTS[k][3] if usd else PRODUCTS[k][4], "quantity": k + 2}
            for k in range(deal.lines)
        ]
        template = seed["deals"][0]
        seed["deals"].append(
            {**template, "id": n, "title": f"Matrix deal {n}", "org_id": org_id, "person_id": n,
             "pipeline_id": deal.pipeline_id, "stage_id": 2 if usd else 4, "owner_id": 1 if usd else 2,
             "currency": "USD" if usd else "EUR", "status": "open", "products": products}
        )  # fmt: skip
    return seed


@contextlib.asynccontextmanager
async def open_cell(
    cell: Cell, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deals: list[ExtraDeal],
    **extra_env: str,
) -> AsyncIterator[E2E]:  # fmt: skip
    async with open_e2e(
        azurite, monkeypatch, mapping_file=cell.mapping(tmp_path), pipedrive_seed=matrix_seed(deals),
        extra_env=extra_env,
    ) as e2e:  # fmt: skip
        yield e2e


def reference_of(deal_id: int) -> str:
    return f"PD-{deal_id}"


def orders_of(e2e: E2E, cell: Cell, deal_id: int) -> list[dict[str, Any]]:
    """Every D365 order (any company) carrying the deal's reference in the cell's reference field."""
    return [o for o in e2e.stack.d365.sales_orders() if o.get(cell.reference_field) == reference_of(deal_id)]


def assert_exactly_once(e2e: E2E, cell: Cell, deals: list[ExtraDeal]) -> None:
    """Invariants 1 and 3 for each deal: one order, in its company, with exactly its lines; one customer each."""
    for deal in deals:
        orders = orders_of(e2e, cell, deal.deal_id)
        assert len(orders) == 1, (deal, [o["SalesOrderNumber"] for o in orders])
        order = orders[0]
        assert order["dataAreaId"] == ("usmf" if deal.pipeline_id == 1 else "demf"), order["dataAreaId"]
        lines = order["SalesOrderLines"]
        assert sorted(line["CustomersLineNumber"] for line in lines) == list(range(1, deal.lines + 1)), lines
        assert sorted(line["ItemNumber"] for line in lines) == sorted(PRODUCTS[k][0] for k in range(deal.lines))
        if cell.numbering == "from_deal":
            assert order["SalesOrderNumber"] == f"PD{deal.deal_id}"
        customers = [
            c for c in e2e.stack.d365.records("CustomersV3")
            if c["OrganizationName"] == f"Matrix Customer {deal.deal_id}" or c["NameAlias"] == f"PD-P{deal.deal_id}"
        ]  # fmt: skip
        assert len(customers) == 1, (deal, [c["CustomerAccount"] for c in customers])
        assert order["OrderingCustomerAccountNumber"] == customers[0]["CustomerAccount"]


def crash_each(plan: dict[int, str]) -> tuple[Callable[[str], Awaitable[None]], list[tuple[int, str]]]:
    """A checkpoint hook that crashes deal N once at step plan[N]; returns it and the crashes it made."""
    fired: list[tuple[int, str]] = []

    async def hook(step: str) -> None:
        subject = step_subject.get()
        deal_id = int(subject.removeprefix("deal-")) if subject.startswith("deal-") else 0
        if plan.get(deal_id) == step and (deal_id, step) not in fired:
            fired.append((deal_id, step))
            raise RuntimeError(f"simulated crash of deal {deal_id} at {step}")

    return hook, fired
