"""The operator CLI as a separate process (like a person runs it) against the running stack."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.fixtures.stack import E2E


async def cli(e2e: E2E, *args: str) -> tuple[int, Any, str]:
    env = {**os.environ, **e2e.stack.env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    text = out.decode()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return proc.returncode or 0, parsed, text + err.decode()


async def test_sync_status_audit_and_replay_from_the_command_line(e2e: E2E) -> None:
    e2e.stack.pipedrive.set_deal_status(101, "won")
    e2e.stack.pipedrive.set_deal_status(108, "won")  # product without a code: fails with a reason

    code, result, text = await cli(e2e, "sync", "--json")
    assert code == 0, text
    assert result["poll"]["enqueued"] == 2
    assert result["outcomes"] == {"created": 1, "failed": 1}

    code, status, text = await cli(e2e, "status", "--json")
    assert code == 0, text
    assert status["jobs"] == {"done": 1, "failed": 1}
    assert status["failed"][0]["deal_id"] == "108"
    assert "has no code; set its code to a D365 item number" in status["failed"][0]["reason"]
    assert status["poison_depth"] == 0 and status["poll_checkpoint"]

    code, trail, text = await cli(e2e, "audit", "101", "--json")
    assert code == 0, text
    events = [row["event"] for row in trail]
    assert events.index("build.started") < events.index("order.created") < events.index("build.done")

    # A replay of a done deal is skipped by the dedupe: still exactly one order.
    code, replayed, text = await cli(e2e, "replay", "101", "--run", "--json")
    assert code == 0, text
    assert replayed["requeued"] == [] and replayed["skipped"] == {"101": "done"}
    assert len(e2e.orders("PD-101")) == 1

    code, _, human = await cli(e2e, "status")
    assert code == 0 and "failed jobs" in human and "108" in human


async def test_audit_reads_any_subject_not_only_deals(e2e: E2E) -> None:
    """The poll, replays, master records and queues keep trails too; `audit` reads them by subject."""
    await e2e.rt.queues.enqueue_master("product", " RFI-TEST-001", "usmf", reason="cli", correlation_id="c1")
    for n in range(3):
        await e2e.rt.state.audit.append("poll", "poll.done", correlation_id=f"poll-{n}", detail={"seen": n})

    code, rows, text = await cli(e2e, "audit", "poll", "--last", "2", "--json")
    assert code == 0, text
    assert [r["correlation_id"] for r in rows] == ["poll-1", "poll-2"]  # the newest two, oldest first
    code, rows, text = await cli(e2e, "audit", "product-usmf- RFI-TEST-001", "--json")  # a leading space kept
    assert code == 0, text
    assert [r["event"] for r in rows] == ["enqueue.queued"]
    code, _, text = await cli(e2e, "audit", "master-diff")
    assert code == 0 and "no audit entries for master-diff" in text
    code, _, text = await cli(e2e, "audit", "poll\x1b[2J")  # a terminal escape is refused, never shown
    assert code == 2 and "printable" in text


async def test_cli_reports_a_missing_setting_clearly(e2e: E2E) -> None:
    env = {k: v for k, v in {**os.environ, **e2e.stack.env}.items() if k != "D365_TENANT_ID"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector.cli", "status",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 2
    assert "D365_TENANT_ID" in out.decode() + err.decode()


async def test_sync_with_a_bad_mapping_file_fails_at_start_naming_the_key(e2e: E2E, tmp_path: Path) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text("version: 1\nlegal_entity: {default: usmf}\ncustomer: {defaults: {customer_group: '10'}}\n")
    env = {**os.environ, **e2e.stack.env, "MAPPING_FILE": str(bad)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector.cli", "sync",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 2
    assert "customer.defaults.currency" in out.decode() + err.decode()
    assert await e2e.queue_depth() == 0  # nothing was queued
