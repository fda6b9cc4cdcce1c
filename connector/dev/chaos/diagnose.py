"""What to look at when the verdict is bad: each concerned deal's audit trail, and the D365 writes
that made a duplicate (with the lost-answer fault, if any, that met them). Written next to the logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.dev.chaos.judge import Verdict
from connector.dev.chaos.seed import ChaosData
from connector.dev.sandbox.stack import LocalStack

MAX_DEALS = 6


async def audit_lines(rt: Any, deal_id: int) -> list[str]:
    trail = await rt.state.audit.trail(f"deal-{deal_id}")
    return [f"  {e.at.strftime('%H:%M:%S.%f')[:-3]} {e.event} {json.dumps(e.detail, default=str)[:300]}" for e in trail]


def customer_writes(stack: LocalStack, name: str) -> list[str]:
    """POSTs of CustomersV3 (alone or in a $batch) whose body carries this customer's name."""
    out = []
    for r in stack.d365.requests():
        if r.method == "POST" and "CustomersV3" in r.path and name.casefold() in json.dumps(r.body).casefold():
            out.append(f"  {r.time:.3f} POST {r.path} -> {r.status}" + (f" (answer lost: {r.lost})" if r.lost else ""))
    return out


async def diagnose(rt: Any, stack: LocalStack, data: ChaosData, verdict: Verdict, folder: Path) -> Path | None:
    deals = [*verdict.duplicates, *verdict.lost, *verdict.wrong_lines, *verdict.failed_with_order][:MAX_DEALS]
    if not deals and not verdict.duplicate_customers:
        return None
    text: list[str] = []
    for deal_id in deals:
        text += [f"deal {deal_id}:", *await audit_lines(rt, deal_id)]
    for customer in verdict.duplicate_customers[:MAX_DEALS]:
        words = customer.split(":", 1)[1].split()
        marker = next((w for w in words if any(c.isdigit() for c in w)), max(words, key=len))
        text += [f"customer {customer}:", *customer_writes(stack, marker)]
        owners = [c for c, name in data.customer_names.items() if name.casefold() == customer.split(":", 1)[1]]
        for deal in [d for d in data.deals if d.customer in owners][:3]:
            text += [f"  deal {deal.deal_id} ({deal.customer}):", *await audit_lines(rt, deal.deal_id)]
    path = folder / "chaos-diagnostics.txt"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path
