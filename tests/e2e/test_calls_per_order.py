"""Calls per order at the floor, in both numbering modes: a known customer's warm order reads the
deal, its products and the products' codes from Pipedrive, writes the order in one (from_deal) or two
(d365_sequence) D365 calls, and the optional number write-back; nothing more, whatever the line count."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.stack import DEMO_MAPPING
from connector.mapping.sections import OrderConfig
from tests.fixtures.stack import open_e2e

NUMBERING = ("from_deal", "d365_sequence")
pytestmark = pytest.mark.skipif(
    "numbering" not in OrderConfig.model_fields, reason="the mapping has no numbering modes"
)

PIPEDRIVE = Counter({"GET /api/v2/deals/{id}": 1, "GET /api/v2/deals/{id}/products": 1, "GET /api/v2/products": 1,
                     "PATCH /api/v2/deals/{id}": 1})  # fmt: skip
D365 = {
    "from_deal": Counter({"POST /data/$batch": 1}),
    "d365_sequence": Counter({"POST /data/SalesOrderHeadersV2": 1, "POST /data/$batch": 1}),
}


def mapping(numbering: str, folder: Path) -> Path:
    data = yaml.safe_load(DEMO_MAPPING.read_text(encoding="utf-8"))
    data["order"]["numbering"] = numbering
    if numbering == "from_deal":
        data["order"]["number_template"] = "PD{deal_id}"
    else:
        data["order"].pop("number_template", None)
    path = folder / f"mapping-{numbering}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def contoso_deal(deal_id: int, lines: int) -> dict[str, object]:
    products = [{"product_id": 1 + k % 10, "item_price": 100 + k, "quantity": 1 + k} for k in range(lines)]
    return {"id": deal_id, "title": f"Contoso {deal_id}", "org_id": 1, "person_id": 1, "pipeline_id": 1,
            "stage_id": 2, "owner_id": 1, "currency": "USD", "status": "open", "products": products}  # fmt: skip


@pytest.mark.parametrize("numbering", NUMBERING)
async def test_a_warm_order_costs_the_floor_of_calls_at_any_line_count(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, numbering: str
) -> None:
    async with open_e2e(azurite, monkeypatch, mapping_file=mapping(numbering, tmp_path)) as e2e:
        e2e.stack.pipedrive.seed({"deals": [contoso_deal(170, 10), contoso_deal(171, 1), contoso_deal(172, 10)]})
        await e2e.win(170)  # warm: the account and the ten items become known
        await e2e.drain()
        for deal_id in (171, 172):
            pd_mark, d_mark = len(e2e.stack.pipedrive.requests()), len(e2e.stack.d365.requests())
            await e2e.win(deal_id)
            await e2e.drain()
            assert len(e2e.orders(f"PD-{deal_id}")) == 1
            pipedrive = Counter(f"{r['method']} {r['route']}" for r in e2e.stack.pipedrive.requests()[pd_mark:])
            d365 = Counter(f"{r.method} {r.path.split('(')[0]}" for r in e2e.stack.d365.requests()[d_mark:]
                           if not r.in_batch and r.path.startswith("/data"))  # fmt: skip
            assert pipedrive == PIPEDRIVE
            assert d365 == D365[numbering]
