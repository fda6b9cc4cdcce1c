"""Benchmark 1: API calls per order, by number of lines, read from the simulators' request logs, in both
numbering modes next to the naive flow (bench/naive.py).

Budget (docs/architecture.md, "Performance budgets"): for a known customer, Pipedrive deal + deal products +
products (+ the optional order-number write-back); D365 the writes of the numbering mode (`from_deal`:
one $batch; `d365_sequence`: the header, then one $batch of lines); no lookup before a first attempt's
create; constant in the number of lines.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.harness import (
    BENCH_PRODUCT_BASE,
    Bench,
    Calls,
    bench_org,
    bench_stack,
    calls_since,
    numbering_mapping,
    seeds,
    us_deal,
)
from bench.report import table
from connector.dev.sandbox.azurite import Azurite
from connector.flows.poll import poll_won_deals
from connector.mapping.sections import OrderConfig

KNOWN_ORG, KNOWN_PERSON = 1, 1  # Contoso: carries its D365 account on the organization field
NEW_ORG = 901
LINES = (1, 10, 50)
WARMUP, NEW_CUSTOMER = 9000, 9100
# The design's budget for a known customer, plus the optional order-number write-back (on in the demo mapping).
PD_BUDGET = {"GET /api/v2/deals/{id}", "GET /api/v2/deals/{id}/products", "GET /api/v2/products"}
PD_OPTIONAL = {"PATCH /api/v2/deals/{id}"}
D365_BUDGET = {"POST /data/$batch", "POST /data/SalesOrderHeadersV2"}
# Both numbering modes where the mapping has them; an older checkout measured has only the demo mapping's way.
MODES = ("from_deal", "d365_sequence") if "numbering" in OrderConfig.model_fields else ("demo mapping",)


def _products(n: int) -> list[int]:
    return [BENCH_PRODUCT_BASE + i for i in range(1, n + 1)]


def _deals() -> list[dict[str, object]]:
    deals = [us_deal(WARMUP, KNOWN_ORG, KNOWN_PERSON, _products(max(LINES)))]
    deals += [us_deal(WARMUP + n, KNOWN_ORG, KNOWN_PERSON, _products(n)) for n in LINES]
    deals.append(us_deal(NEW_CUSTOMER, NEW_ORG, NEW_ORG, _products(10)))
    return deals


async def _measure(bench: Bench, deal_id: int) -> Calls:
    pd_mark, d_mark = len(bench.pipedrive_log()), len(bench.d365_log())
    stats = await bench.win_and_build(deal_id)
    if stats.outcomes != {"created": 1}:
        raise RuntimeError(f"deal {deal_id}: expected one created order, got {stats.outcomes} ({stats})")
    return calls_since(bench, pd_mark, d_mark)


def _breakdown(counter: dict[str, int]) -> str:
    return ", ".join(f"{route} x{n}" if n > 1 else route for route, n in sorted(counter.items()))


async def run(azurite: Azurite) -> str:
    with tempfile.TemporaryDirectory() as folder:
        tables = [await _mode(azurite, mode, numbering_mapping(mode, Path(folder))) for mode in MODES]
    from bench import naive

    return "\n".join([await _side_by_side(azurite, naive), *tables])


async def _side_by_side(azurite: Azurite, naive: object) -> str:
    """Known customer, warm: ours in both modes next to the naive recipe, by line count."""
    with tempfile.TemporaryDirectory() as folder:
        ours = {mode: await _known(azurite, numbering_mapping(mode, Path(folder))) for mode in MODES}
    theirs = await naive.calls_by_lines(azurite, LINES)  # type: ignore[attr-defined]
    rows = []
    for n in LINES:
        cells = [f"{ours[m][n][0]} + {ours[m][n][1]}" for m in MODES]
        best = min(sum(ours[m][n]) for m in MODES)
        rows.append((n, *cells, f"{theirs[n][0]} + {theirs[n][1]}", f"{sum(theirs[n]) / best:.1f}x"))
    return table(
        "1. Calls per order, known customer, warm (Pipedrive + D365): each numbering mode next to the naive flow",
        ["lines", *(f"ours, {m}" for m in MODES), "naive (iPaaS recipe)", "naive / ours"],
        rows,
        ["Ours includes the optional order-number write-back (on in the demo mapping); so does the naive flow.",
         "Naive: per line a product read and a D365 item lookup, the organization and a customer search every",
         "time, the header and one POST per line (bench/naive.py)."],
    )  # fmt: skip


async def _known(azurite: Azurite, mapping: Path) -> dict[int, tuple[int, int]]:
    pd_seed, d_seed = seeds(products=max(LINES), deals=_deals()[:-1])
    async with bench_stack(azurite, pd_seed, d_seed, mapping_file=mapping) as bench:
        await _measure(bench, WARMUP)
        out = {}
        for n in LINES:
            calls = await _measure(bench, WARMUP + n)
            out[n] = (calls.pipedrive_total, calls.d365_total)
        return out


async def _mode(azurite: Azurite, mode: str, mapping: Path) -> str:
    pd_seed, d_seed = seeds(products=max(LINES), orgs=[bench_org(NEW_ORG, "Bench Fluidtech Inc.")], deals=_deals())
    rows: list[tuple[object, ...]] = []
    breakdown: list[str] = []
    over: set[str] = set()
    async with bench_stack(azurite, pd_seed, d_seed, mapping_file=mapping) as bench:
        scenarios = [("first order of org (account on field), new items", WARMUP, max(LINES))]
        scenarios += [("known customer, items in id map", WARMUP + n, n) for n in LINES]
        scenarios.append(("new customer (created in D365)", NEW_CUSTOMER, 10))
        for label, deal_id, lines in scenarios:
            calls = await _measure(bench, deal_id)
            if deal_id != WARMUP and deal_id != NEW_CUSTOMER:
                over |= (set(calls.pipedrive) - PD_BUDGET - PD_OPTIONAL) | (set(calls.d365) - D365_BUDGET)
                over |= {f"{route} x{n}" for route, n in (calls.pipedrive + calls.d365).items() if n > 1}
            rows.append(
                (label, lines, calls.pipedrive_total, calls.d365_total, f"{calls.pipedrive_token}/{calls.d365_token}",
                 calls.d365_batch_ops)
            )  # fmt: skip
            breakdown.append(f"{label}, {lines} lines:\n      Pipedrive: {_breakdown(calls.pipedrive)}"
                             f"\n      D365:      {_breakdown(calls.d365)}")  # fmt: skip
        # Poll: the first run sets the watermark; the second is the steady state "nothing new".
        for label in ("poll, first run (sets watermark)", "poll, nothing new"):
            pd_mark, d_mark = len(bench.pipedrive_log()), len(bench.d365_log())
            result = await poll_won_deals(await bench.rt.poll_deps())
            calls = calls_since(bench, pd_mark, d_mark)
            rows.append((f"{label}: enqueued {result.enqueued}", "-", calls.pipedrive_total, calls.d365_total,
                         f"{calls.pipedrive_token}/{calls.d365_token}", 0))  # fmt: skip
            breakdown.append(f"{label}:\n      Pipedrive: {_breakdown(calls.pipedrive)}")
    return table(
        f"1{'ab'[MODES.index(mode)]}. API calls per order, numbering {mode} (HTTP requests seen by the simulators)",
        ["scenario", "lines", "Pipedrive", "D365", "token PD/D365", "ops in $batch"],
        rows,
        [
            "Budget, known customer: Pipedrive deal + deal products + products batch (+ optional order-number",
            "write-back PATCH, on in the demo mapping); D365 from_deal: one $batch; d365_sequence: the header POST",
            "and one $batch of lines; no lookup before a first attempt's create. Poll, nothing new: 2 (live and",
            "archived won deals; 1 with POLL_ARCHIVED=false).",
            "Token calls are counted apart (Pipedrive uses an API token here: none; D365 token is cached).",
            "Known customer, beyond the budget: " + (", ".join(sorted(over)) or "nothing"),
            *breakdown,
        ],
    )
