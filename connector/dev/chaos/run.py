"""One chaos run: the embedded stack, worker processes, won deals, kills and faults, then the verdict.

1. Azurite + both simulators (this process); the chaos data set; a mapping in the chosen numbering.
2. `workers` real `ml-connector serve` processes on the stack's settings, behind one webhook URL.
3. For `chaos_seconds`: deals are won (Pipedrive sends webhooks), workers are killed with SIGKILL and
   restarted, fault bursts hit both APIs, all on a seeded schedule printed at the start.
4. Calm: faults cleared, every worker up; one poll; wait (bounded) until the order queue is empty and
   every won deal's job is done or failed.
5. Judge from D365 (OData, cross-company), Pipedrive, the job rows and every worker's log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.dev.chaos.config import ChaosConfig
from connector.dev.chaos.diagnose import diagnose
from connector.dev.chaos.judge import Verdict, judge
from connector.dev.chaos.monkey import Event, Monkey, schedule
from connector.dev.chaos.proxy import FrontDoor
from connector.dev.chaos.seed import ChaosData, ChaosDeal, chaos_data, write_mapping
from connector.dev.chaos.workers import WorkerPool
from connector.dev.sandbox.azurite import Azurite
from connector.dev.sandbox.stack import WEBHOOK_USER, LocalStack
from connector.state.jobs import ORDER_JOB


@dataclass
class ChaosReport:
    config: ChaosConfig
    verdict: Verdict
    events: list[Event]
    injected: Counter[str]
    kills: int = 0
    share_429: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    drained: bool = False
    drain_wait: float = 0.0  # seconds from the calm to an empty queue with every job settled
    queue_peak: int = 0  # the order queue's deepest point during the drain (re-sent messages swell it)
    rss_mb: list[float] = field(default_factory=list)
    folder: Path | None = None
    diagnostics: str = ""  # audit trails and D365 writes behind a broken invariant

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def line(self) -> str:
        v = self.verdict
        failed = ",".join(f"{reason!r}:{len(ids)}" for reason, ids in sorted(v.failed.items())) or "none"
        faults = ",".join(f"{k}:{n}" for k, n in sorted(self.injected.items())) or "none"
        share = ",".join(f"{api}:{pct:.1f}%" for api, pct in self.share_429.items())
        rss = ",".join(f"w{i}:{mb:.0f}" for i, mb in enumerate(self.rss_mb))
        return (
            f"chaos numbering={self.config.numbering} seed={self.config.seed} deals={self.config.deals} won={v.won} "
            f"orders={v.orders} duplicates={len(v.duplicates)} lost={len(v.lost)} wrong_lines={len(v.wrong_lines)} "
            f"duplicate_customers={len(v.duplicate_customers)} leaks={len(v.leaks)} failed={failed} "
            f"kills={self.kills} faults={faults} 429_share={share} wall={self.wall:.1f}s "
            f"drained={'yes' if self.drained else 'NO'}:{self.drain_wait:.0f}s queue_peak={self.queue_peak} "
            f"peak_rss_mb={rss}"
        )

    def problems(self) -> list[str]:
        """Each broken invariant with the deals it concerns (for the report and a test's message)."""
        v = self.verdict
        out = [f"{name}: {ids[:20]}" for name, ids in (("duplicate orders", v.duplicates), ("lost deals", v.lost),
               ("wrong lines", v.wrong_lines), ("failed job but an order", v.failed_with_order)) if ids]  # fmt: skip
        out += [f"duplicate customer {name}" for name in v.duplicate_customers]
        out += [f"leak: {leak}" for leak in v.leaks]
        return out + ([self.diagnostics] if out and self.diagnostics else [])


@contextlib.contextmanager
def scoped_env(values: Mapping[str, str]) -> Iterator[None]:
    """The stack's settings in this process's environment for the run, restored afterwards."""
    from connector.settings import get_settings

    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def _tunables(config: ChaosConfig) -> tuple[dict[str, str], bool]:
    """Settings that make the run's clock fast; whether this version has a configurable D365 timeout."""
    from connector.settings import Settings

    fields = Settings.model_fields
    env = {"LOG_LEVEL": config.log_level, "JOB_LEASE_SECONDS": "20", "JOB_STALE_SECONDS": str(config.stale_seconds)}
    if "pipedrive_instances" in fields:
        env["PIPEDRIVE_INSTANCES"] = str(config.workers)  # the documented sizing: instances share one token
    timeouts = "d365_timeout_seconds" in fields
    if timeouts:
        # Late commits land within timeout + 1.5 s (the simulator's stand-in for F&O's own timeout).
        env |= {"D365_TIMEOUT_SECONDS": str(config.d365_timeout), "D365_SETTLE_SECONDS": str(config.d365_timeout + 4)}
    if "reconcile_grace_seconds" in fields:
        env |= {"RECONCILE_GRACE_SECONDS": "10"}
    return env, timeouts


def _serve_args(config: ChaosConfig) -> list[str]:
    import inspect

    from connector.cli import serve

    args = ["--poll-every", str(config.poll_every), "--master-every", "0"]
    if "reconcile_every" in inspect.signature(serve).parameters:
        args += ["--reconcile-every", "3"]
    return args


def _share_429(stack: LocalStack) -> dict[str, float]:
    pd = [r["status"] for r in stack.pipedrive.requests()]
    d365 = [r.status for r in stack.d365.requests() if r.path.startswith("/data") or r.in_batch]
    return {api: 100.0 * s.count(429) / len(s) if s else 0.0 for api, s in (("pipedrive", pd), ("d365", d365))}


async def run_chaos(
    config: ChaosConfig, *, azurite: Azurite | None = None, workdir: Path | None = None,
    say: Callable[[str], None] = print,
) -> ChaosReport:  # fmt: skip
    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        folder = workdir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="ml-chaos-")))
        folder.mkdir(parents=True, exist_ok=True)
        data = chaos_data(config)
        env, timeouts = _tunables(config)
        admin_key = secrets.token_urlsafe(24)
        stack = LocalStack(pipedrive_seed=data.pipedrive, d365_seed=data.d365, azurite=azurite, workdir=folder,
                           mapping_file=write_mapping(config.numbering, folder),
                           extra_env={**env, "ML_CONNECTOR_ADMIN_KEY": admin_key})  # fmt: skip
        async with stack:
            with scoped_env(stack.env):
                report = await _run(config, stack, data, folder, timeouts, say)
        report.wall = time.monotonic() - started
        report.folder = folder if workdir else None
        return report


async def _run(
    config: ChaosConfig, stack: LocalStack, data: ChaosData, folder: Path, timeouts: bool,
    say: Callable[[str], None],
) -> ChaosReport:  # fmt: skip
    from connector.flows.poll import poll_won_deals
    from connector.runtime import Runtime

    deals = data.deals
    events = schedule(config, timeouts=timeouts)
    say(f"chaos seed={config.seed} numbering={config.numbering} schedule: " + "; ".join(
        f"{e.at:.1f}s kill w{e.slot} (back after {e.restart_after:.1f}s)" for e in events if e.kind == "kill"))  # fmt: skip
    if not timeouts:
        say("chaos: no D365_TIMEOUT_SECONDS setting in this version: stalls and late commits are left out")
    monkey = Monkey(stack, config, timeouts=timeouts)
    pool = WorkerPool(config.workers, stack.env, folder, serve_args=_serve_args(config))
    door = await FrontDoor(pool).start()
    rt = Runtime.open()
    reference = rt.mapping.order.reference_template
    report = ChaosReport(config, Verdict(), events, monkey.injected)
    try:
        pipedrive = await rt.pipedrive()
        await pipedrive.ensure_webhook(f"{door.url}/api/pipedrive/webhook", WEBHOOK_USER, stack.webhook_password)
        await pool.start()
        await _play(config, stack, deals, events, monkey, pool)
        await monkey.calm()
        await pool.all_up()
        calm = time.monotonic()
        await poll_won_deals(await rt.poll_deps())  # the net under every dropped webhook and lost message
        report.drained, report.queue_peak = await _drained(rt, stack, [d.deal_id for d in deals],
                                                           config.drain_seconds, say)  # fmt: skip
        report.drain_wait = time.monotonic() - calm
        jobs = {int(job.key): job for job in await rt.state.jobs.list(ORDER_JOB)}
        await pool.stop()  # every log complete before the leak check
        basic = base64.b64encode(f"{WEBHOOK_USER}:{stack.webhook_password}".encode()).decode()  # webhook auth header
        secrets_in_play = [stack.pipedrive.api_token, stack.d365.client_secret, stack.webhook_password, basic,
                           stack.env["LOCAL_SECRETS_KEY"], stack.env["ML_CONNECTOR_ADMIN_KEY"]]  # fmt: skip
        report.verdict = await judge(stack, deals, jobs, reference, pool.logs(), secrets_in_play)
        found = await diagnose(rt, stack, data, report.verdict, folder)
        report.diagnostics = found.read_text(encoding="utf-8") if found else ""
    finally:
        await pool.stop()
        await door.stop()
        await rt.close()
    report.kills = sum(slot.kills for slot in pool.slots)
    report.rss_mb = [slot.peak_rss for slot in pool.slots]
    report.share_429 = _share_429(stack)
    return report


async def _play(
    config: ChaosConfig, stack: LocalStack, deals: list[ChaosDeal], events: list[Event], monkey: Monkey,
    pool: WorkerPool,
) -> None:  # fmt: skip
    """Win every deal and play the events against the clock (the workload's clock, not a synchronisation)."""
    rnd = random.Random(config.seed)
    wins = sorted((rnd.uniform(0, 0.6) * config.chaos_seconds, d.deal_id) for d in deals)
    timeline: list[tuple[float, Any]] = [*wins, *((e.at, e) for e in events)]
    timeline.sort(key=lambda item: item[0])
    start = time.monotonic()
    for at, what in timeline:
        await asyncio.sleep(max(0.0, at - (time.monotonic() - start)))
        if isinstance(what, int):
            stack.pipedrive.set_deal_status(what, "won")  # a user wins it in the app: webhooks fire
        elif what.kind == "kill":
            live = pool.live()  # the drawn worker, or the next one running (never one still restarting)
            slot = next((s for s in [pool.slots[what.slot], *live] if s in live), None)
            if slot is not None:
                pool.kill(slot)
                pool.restart_later(slot, what.restart_after)
        else:
            monkey.inject(what.kind)
        pool.sample()
    await asyncio.sleep(max(0.0, config.chaos_seconds - (time.monotonic() - start)))


async def _drained(
    rt: Any, stack: LocalStack, deal_ids: list[int], bound: float, say: Callable[[str], None]
) -> tuple[bool, int]:
    """Until the order queue is empty and every won deal's job is done or failed (bounded); and the queue's peak.

    Says what it waits for (queue depth, unsettled jobs by state, held commits) every 10 s at most.
    """
    start = said = time.monotonic()
    peak = 0
    wanted = {str(d) for d in deal_ids if stack.pipedrive.deal(d)["status"] == "won"}
    while time.monotonic() - start < bound:
        depth = await rt.queues.depth(rt.queues.order_queue)
        peak = max(peak, depth)
        jobs = {j.key: j.state for j in await rt.state.jobs.list(ORDER_JOB) if j.key in wanted}
        unsettled = Counter(jobs.get(key, "none") for key in wanted if jobs.get(key) not in ("done", "failed"))
        done = depth == 0 and not unsettled and stack.d365.pending_commits == 0
        if done or time.monotonic() - said >= 10:
            say(f"drain +{time.monotonic() - start:.0f}s: queue {depth}, unsettled jobs {dict(unsettled)}, "
                f"held commits {stack.d365.pending_commits}")  # fmt: skip
            said = time.monotonic()
        if done:
            return True, peak
        await asyncio.sleep(0.5)  # polling observable state: queue depth and job rows
    return False, peak
