"""`make demo`: the connector end to end on the embedded default, with no credentials.

Azurite + both simulators are seeded with a distributor data set; the webhook is registered; ten
deals are won. Along the way one webhook is dropped (the poll recovers it), one is delivered twice
(still one order), one deal has a product without an item number (it fails with a reason, the demo
fixes the product and replays it) and D365 answers a burst of 429s (ridden out). Then the other
direction: a full master sync, a D365 price change delivered as a business event, and a resync that
must write nothing. Orders are numbered by D365's number sequence (`numbering: d365_sequence`, as in the
shipped example mapping: the header, then its lines); a second pass on fresh simulators wins three deals
with `numbering: from_deal` (order numbers PD<deal>, header and lines in one changeset). The report ends
with the invariants; any that does not hold makes the exit code non-zero.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from connector.dev.localhost import LocalHost, QueuePump
from connector.dev.sandbox.demo_data import UNMAPPED_CODE_FIX, UNMAPPED_PRODUCT_ID, d365_seed, pipedrive_seed
from connector.dev.sandbox.stack import WEBHOOK_USER, LocalStack, from_deal_mapping
from connector.flows.poll import poll_won_deals
from connector.flows.replay import replay_failed
from connector.runtime import close_runtime, get_runtime
from connector.state.jobs import ORDER_JOB

WON = list(range(101, 111))
DROPPED, DUPLICATED, UNMAPPED = 106, 102, 108
FROM_DEAL = [101, 103, 105]  # the second pass: order numbers made from the deal (one in demf)
console = Console()


@dataclass
class Report:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def _drop_shell_settings() -> list[str]:
    """The demo brings all its settings. One exported in this shell (KEY_VAULT_URL, D365_CREDENTIAL, ...)
    would point it at real services or change what it shows, so this process forgets them."""
    from connector.settings import env_names

    names = {name.lower() for name in env_names()}
    dropped = sorted(name for name in os.environ if name.lower() in names)
    for name in dropped:
        del os.environ[name]
    return dropped


async def run() -> Report:
    report = Report()
    dropped = _drop_shell_settings()
    if dropped:
        console.print(f"The demo ignores these settings of your shell: {', '.join(dropped)}", style="dim")
    async with LocalStack(pipedrive_seed=pipedrive_seed(), d365_seed=d365_seed(), webhook_time_scale=0.01) as stack:
        stack.apply_env()
        rt = await get_runtime()
        host = LocalHost(rt)
        await host.start(workers=False)
        try:
            await _scenario(stack, rt, host, report)
        finally:
            await host.stop()
            await close_runtime()
        with tempfile.TemporaryDirectory(prefix="ml-connector-demo-") as folder:
            await _from_deal_pass(stack, Path(folder), report)
    return report


async def _from_deal_pass(first: LocalStack, folder: Path, report: Report) -> None:
    """The other numbering mode on fresh simulators (same Azurite): header and lines in ONE changeset."""
    console.rule("Second pass: order numbers from the deal (numbering: from_deal)")
    async with LocalStack(
        pipedrive_seed=pipedrive_seed(), d365_seed=d365_seed(), azurite=first.azurite,
        mapping_file=from_deal_mapping(folder),
    ) as stack:  # fmt: skip
        stack.apply_env()
        rt = await get_runtime()
        try:
            for deal_id in FROM_DEAL:
                stack.pipedrive.set_deal_status(deal_id, "won")
                await rt.queues.enqueue_order(deal_id, reason="demo", correlation_id=f"demo-{deal_id}")
            await QueuePump(rt, retry_after=0).drain()
            orders = {o["CustomersOrderReference"]: o for o in stack.d365.sales_orders()}
            writes = [r.path for r in stack.d365.requests() if r.method == "POST" and not r.in_batch]
            order_writes = [p for p in writes if "SalesOrder" in p or p.endswith("$batch")]
            for deal_id in FROM_DEAL:
                order = orders.get(f"PD-{deal_id}", {})
                console.print(
                    f"deal {deal_id}: order {order.get('SalesOrderNumber', '-')} in {order.get('dataAreaId', '-')}, "
                    f"{len(order.get('SalesOrderLines', []))} lines"
                )
            report.check(
                "from_deal: order number from the deal",
                all(orders.get(f"PD-{d}", {}).get("SalesOrderNumber") == f"PD{d}" for d in FROM_DEAL),
            )
            report.check(
                "from_deal: one D365 write per order",
                len(order_writes) == len(FROM_DEAL),
                f"{len(order_writes)} order writes for {len(FROM_DEAL)} orders",
            )
        finally:
            await close_runtime()


async def _scenario(stack: LocalStack, rt: Any, host: LocalHost, report: Report) -> None:
    pd = stack.pipedrive
    console.rule("[bold]ml-connector demo[/bold]: Pipedrive won deals -> D365 F&O sales orders")
    console.print(
        f"Started in memory: Azurite, Pipedrive simulator {pd.base_url}, D365 simulator {stack.d365.base_url}"
    )
    client = await rt.pipedrive()
    hook = await client.ensure_webhook(
        f"{host.base_url}/api/pipedrive/webhook", WEBHOOK_USER, stack.webhook_password, "change", "deal"
    )
    again = await client.ensure_webhook(
        f"{host.base_url}/api/pipedrive/webhook", WEBHOOK_USER, stack.webhook_password, "change", "deal"
    )
    report.check("webhook registered once", hook.id == again.id, f"webhook {hook.id}")

    console.print(f"Winning deals {WON[0]}..{WON[-1]} (webhook of {DROPPED} dropped, of {DUPLICATED} duplicated)")
    for deal_id in WON:
        if deal_id == DROPPED:
            pd.webhook_fault("drop")
        if deal_id == DUPLICATED:
            pd.webhook_fault("duplicate")
        pd.set_deal_status(deal_id, "won")
    await pd.wait_for_deliveries(len(WON), timeout=30, ok_only=True)  # 9 delivered + 1 duplicate

    # A burst of throttling from D365 on the order changesets: waited out, not failed.
    stack.d365.inject_fault(status=429, retry_after=1, count=3, path="/data/$batch")
    pump = QueuePump(rt, retry_after=0)
    with console.status("building orders from webhooks…"):
        await pump.drain()
    with console.status("timer poll (recovers the dropped webhook)…"):
        polled = await poll_won_deals(await rt.poll_deps())
        await pump.drain()
    console.print(f"poll: {polled.seen} won deals seen, {polled.enqueued} queued (the rest were already done)")

    failed_before = await rt.state.jobs.list(ORDER_JOB, "failed")
    reasons = {int(j.key): j.last_error or "" for j in failed_before}
    for deal_id, reason in reasons.items():
        console.print(f"[yellow]deal {deal_id} failed:[/yellow] {reason}")
    report.check(
        "unmapped product fails clearly",
        set(reasons) == {UNMAPPED} and "has no code; set its code to a D365 item number" in reasons.get(UNMAPPED, ""),
        f"deal {UNMAPPED}: the reason above" if UNMAPPED in reasons else f"failed: {sorted(reasons)}",
    )

    from connector.pipedrive.models import ProductInput

    console.print(f"Fixing product {UNMAPPED_PRODUCT_ID}: code := {UNMAPPED_CODE_FIX}; replaying failed jobs")
    await client.update_product(UNMAPPED_PRODUCT_ID, ProductInput(code=UNMAPPED_CODE_FIX))
    replayed = await replay_failed(await rt.requeue_deps())
    await pump.drain()
    # Replays of done deals go through the same dedupe: no second order, ever.
    from connector.flows.replay import replay_deals

    again_replay = await replay_deals(await rt.requeue_deps(), WON)
    await pump.drain()
    report.check("replay of done deals is skipped", not again_replay.requeued, f"skipped {len(again_replay.skipped)}")

    await _verify(stack, rt, report, replayed.requeued, pump)
    await _masters(stack, rt, host, report)


async def _masters(stack: LocalStack, rt: Any, host: LocalHost, report: Report) -> None:
    """The other direction: D365 released products and customers become Pipedrive products/organizations."""
    from connector.flows.master_diff import master_diff

    console.rule("Master data: D365 -> Pipedrive")
    await stack.d365.set_event_endpoint(f"{host.base_url}/api/d365/events?code={host.admin_key}")
    await stack.d365.wait_for_events(1)  # F&O sends its test event when the endpoint is activated
    masters = QueuePump.for_masters(rt, retry_after=0)
    with console.status("first full sync of released products and customers…"):
        first = await master_diff(await rt.diff_deps(), "all", reason="demo")
        await masters.drain()
    read = ", ".join(f"{count} {kind}" for kind, count in first.seen.items())
    pushed = "; ".join(
        f"{kind}: " + ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())
        for kind, outcomes in first.pushed.items()
    )
    console.print(f"first sync: read {read} from D365 (both companies); pushed {pushed}; queued {first.enqueued}")
    console.print(
        "  (adopted: already in Pipedrive with that code/account, now linked, not created again; "
        "one Pipedrive product serves the item in every company)",
        style="dim",
    )

    code = "HP-1000"
    events_before = len(stack.d365.events.deliveries)
    d365 = await rt.d365()
    await d365.update("ReleasedProductsV2", {"dataAreaId": "usmf", "ItemNumber": code}, {"SalesPrice": 1299.0})
    await stack.d365.wait_for_events(events_before + 1)
    await masters.drain()
    store = stack.pipedrive.sim.store
    found = [p for p in store.visible("product") if p.get("code") == code]
    usd = [float(p["price"]) for p in (found[0]["prices"] if found else []) if p["currency"] == "USD"]
    console.print(f"D365 price change of {code} -> business event -> Pipedrive product price USD {usd}")
    report.check("D365 price change reached Pipedrive", len(found) == 1 and usd == [1299.0], f"{code}: {usd}")

    writes_before = _pipedrive_writes(stack)
    again = await master_diff(await rt.diff_deps(), "all", reason="demo")
    await masters.drain()
    report.check(
        "resync with nothing changed writes nothing",
        again.enqueued == 0 and not again.pushed and _pipedrive_writes(stack) == writes_before,
        f"read {', '.join(f'{n} {kind}' for kind, n in again.seen.items())}; "
        f"pushed {sum(sum(o.values()) for o in again.pushed.values())}",
    )
    codes = [p.get("code") for p in store.visible("product") if p.get("code")]
    report.check("one Pipedrive product per item number", len(codes) == len(set(codes)), f"{len(codes)} products")


def _pipedrive_writes(stack: LocalStack) -> int:
    return sum(1 for r in stack.pipedrive.requests() if r["method"] in ("POST", "PATCH", "PUT", "DELETE"))


async def _verify(stack: LocalStack, rt: Any, report: Report, replayed: list[int], pump: QueuePump) -> None:
    orders = stack.d365.sales_orders()
    by_ref = Counter(o.get("CustomersOrderReference") for o in orders)
    seeded = {
        o["SalesOrderNumber"] for o in orders if not str(o.get("CustomersOrderReference") or "").startswith("PD-")
    }
    ours = [o for o in orders if o["SalesOrderNumber"] not in seeded]
    jobs = {int(j.key): j for j in await rt.state.jobs.list(ORDER_JOB)}
    lines_expected = {d: len([p for p in stack.pipedrive.sim.store.tables["deal_product"].values() if p["deal_id"] == d])
                      for d in WON}  # fmt: skip

    table = Table("deal", "order", "customer", "how", "lines", "currency", "dimensions", title="Orders in D365")
    for deal_id in WON:
        job = jobs.get(deal_id)
        result = (job.result or {}) if job else {}
        order = next((o for o in ours if o.get("CustomersOrderReference") == f"PD-{deal_id}"), None)
        table.add_row(
            str(deal_id),
            str(result.get("order_number", "-")),
            str(order.get("OrderingCustomerAccountNumber") if order else "-"),
            str(result.get("customer_how", "-")),
            str(len(order.get("SalesOrderLines", [])) if order else 0),
            str(order.get("CurrencyCode") if order else "-"),
            str(order.get("DefaultLedgerDimensionDisplayValue") if order else "-"),
        )
    console.print(table)
    console.print(
        "  how the customer was found: idmap = linked already (an earlier deal of the same organization), "
        "matched = an existing D365 customer (the account on the organization, or the same name and country), "
        "created = a new D365 customer",
        style="dim",
    )

    how = Counter((j.result or {}).get("customer_how") for j in jobs.values() if j.state == "done")
    pd_calls = [r for r in stack.pipedrive.requests() if not r["path"].startswith("/oauth")]
    d365_calls = [r for r in stack.d365.requests() if r.path.startswith("/data")]
    console.print(
        f"deals won: {len(WON)}   orders created: {len(ours)}   customers: "
        f"{how['account_field'] + how['matched']} matched, {how['created']} created, {how['idmap']} linked already"
    )
    console.print(
        f"API calls per order: Pipedrive {len(pd_calls) / max(1, len(ours)):.1f}, "
        f"D365 {len(d365_calls) / max(1, len(ours)):.1f} (incl. customer creation, item checks and retries)"
    )
    throttled = [r for r in stack.d365.requests() if r.status == 429]

    not_one = {ref: n for ref, n in by_ref.items() if n != 1}
    report.check(
        "one order per won deal",
        all(by_ref.get(f"PD-{d}") == 1 for d in WON),
        f"{len(WON)} deals, one order each" if not not_one else f"orders per reference: {not_one}",
    )
    report.check("no order for anything else", len(ours) == len(WON), f"{len(ours)} orders")
    report.check(
        "every order has all its lines",
        all(
            len(o.get("SalesOrderLines", [])) == lines_expected[int(str(o["CustomersOrderReference"])[3:])]
            for o in ours
        ),
    )
    report.check(
        "every job done",
        all(jobs.get(d) and jobs[d].state == "done" for d in WON),
        ", ".join(f"{n} {state}" for state, n in Counter(j.state for j in jobs.values()).items()),
    )
    report.check("dropped webhook recovered by the poll", by_ref.get(f"PD-{DROPPED}") == 1)
    report.check("duplicated webhook made one order", by_ref.get(f"PD-{DUPLICATED}") == 1)
    report.check("failed deal fixed and replayed", UNMAPPED in replayed and by_ref.get(f"PD-{UNMAPPED}") == 1)
    report.check("429 burst ridden out", len(throttled) >= 1, f"{len(throttled)} throttled responses")
    writes = [r for r in stack.pipedrive.requests() if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]
    financial = [
        r for r in writes
        if not (r["path"].startswith(("/api/v2/organizations/", "/api/v2/deals/", "/v1/webhooks", "/api/v2/products/")))
        or (r["path"].startswith("/api/v2/deals/") and set((r.get("body") or {}).keys()) - {"custom_fields"})
    ]  # fmt: skip
    report.check("nothing financial written to Pipedrive", not financial, f"{len(writes)} writes, all references")
    report.check("poison queue empty", await rt.queues.poison_depth(rt.queues.order_queue) == 0)


NEXT_STEPS = """\
Everything ran in memory and is gone now; run it again any time.
Next steps:
  - how it works:        README.md, docs/architecture.md
  - the admins' set-up:  docs/admin-pipedrive.md, docs/admin-d365.md
  - deploy to Azure:     docs/deploy-azure.md
  - your mapping:        config/mapping.example.yaml
  - the command line:    README.md "Operations" (.venv/bin/ml-connector --help)"""


def main() -> None:
    report = asyncio.run(run())
    table = Table("invariant", "holds", "detail", title="Invariants")
    for name, ok, detail in report.checks:
        table.add_row(name, "[green]yes[/green]" if ok else "[red]NO[/red]", detail)
    console.print(table)
    failed = [name for name, ok, _ in report.checks if not ok]
    if failed:
        console.print(f"[red]{len(failed)} of {len(report.checks)} invariants do NOT hold:[/red] {', '.join(failed)}")
    else:
        console.print(f"[green]All {len(report.checks)} invariants hold.[/green]")
    console.print(NEXT_STEPS, highlight=False)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
