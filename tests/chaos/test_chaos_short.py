"""The short chaos run in both numbering modes: real worker processes killed with
SIGKILL, faults and lost answers in both APIs; every won deal ends as exactly one order with exactly
its lines, no customer twice, no secret in any log, and (every fault being transient) no failed job."""

from __future__ import annotations

import pytest

from connector.dev.chaos import ChaosConfig, run_chaos
from connector.dev.sandbox.azurite import Azurite

MODES = ["from_deal", "d365_sequence"]


@pytest.mark.parametrize("numbering", MODES)
async def test_short_chaos_run(azurite: Azurite, numbering: str) -> None:
    lines: list[str] = []
    report = await run_chaos(ChaosConfig.short(numbering), azurite=azurite, say=lines.append)  # type: ignore[arg-type]
    detail = "\n".join([*lines, report.line(), *report.problems()])
    assert report.kills >= 1, detail
    assert report.verdict.won == report.config.deals, detail
    assert report.ok, detail
    assert report.drained, detail
    assert not report.verdict.failed and not report.verdict.failed_with_order, detail
    assert report.verdict.orders == report.config.deals, detail
