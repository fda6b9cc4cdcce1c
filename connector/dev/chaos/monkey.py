"""The chaos schedule: when to kill which worker, and which fault bursts to inject into which API.

Drawn once from the run's seed (so it can be printed and repeated), then played against the clock
while deals are being won. Every kind the issue names is in the menu; a kind that needs a setting
this version lacks (a short D365 client timeout, for stalls past it) is left out and said so.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from connector.dev.chaos.config import ChaosConfig
from connector.dev.sandbox.stack import LocalStack

LOST_PATHS = ("/data/CustomersV3", "/data/SalesOrderHeadersV2", "/data/$batch")
SHORT_TOKEN_LIFETIME = 4  # seconds; the connector renews ahead of expiry and once on a 401


@dataclass(frozen=True)
class Event:
    at: float  # seconds after the chaos started
    kind: str
    slot: int = -1  # kills: the worker
    restart_after: float = 0.0


def _menu(timeouts: bool) -> list[tuple[str, int]]:
    """(kind, weight). Stalls and late commits need the client's D365 timeout to be short and known."""
    kinds = [
        ("d365-429-short", 4), ("d365-429-long", 2), ("d365-5xx", 2), ("d365-gateway-html", 2),
        ("d365-429-changeset", 2), ("d365-latency", 2), ("d365-token-revoked", 1), ("d365-token-short", 1),
        ("d365-lost-answer", 4), ("pd-429", 3), ("pd-5xx", 2), ("pd-latency", 1), ("webhook-drop", 2),
        ("webhook-duplicate", 2),
    ]  # fmt: skip
    if timeouts:
        kinds += [("d365-stall", 1), ("d365-late-commit", 3)]
    return kinds


def schedule(config: ChaosConfig, *, timeouts: bool) -> list[Event]:
    rnd = random.Random(config.seed * 7919 + 1)
    span = config.chaos_seconds
    events = [
        Event(round(rnd.uniform(0.1, 0.6) * span, 2), "kill", rnd.randrange(config.workers),
              round(rnd.uniform(*config.restart_after), 2))
        for _ in range(config.kills)
    ]  # fmt: skip
    kinds, weights = zip(*_menu(timeouts), strict=True)
    events += [
        Event(round(rnd.uniform(0, 0.85) * span, 2), k) for k in rnd.choices(kinds, weights, k=config.fault_events)
    ]
    return sorted(events, key=lambda e: e.at)


class Monkey:
    """Injects one fault burst per event into the simulators; counts what it injected by kind."""

    def __init__(self, stack: LocalStack, config: ChaosConfig, *, timeouts: bool) -> None:
        self.stack = stack
        self.config = config
        self.timeouts = timeouts
        self.rnd = random.Random(config.seed * 104729 + 3)
        self.injected: Counter[str] = Counter()
        self._token_lifetime = stack.d365.issuer.lifetime

    def inject(self, kind: str) -> None:
        action: Callable[[], int] = getattr(self, "_" + kind.replace("-", "_"))
        self.injected[kind] += action()

    # ---- D365 ---------------------------------------------------------------------------------
    def _d365(self, **fault: object) -> int:
        self.stack.d365.inject_fault(**fault)
        return int(fault.get("count", 1))  # type: ignore[call-overload]

    def _d365_429_short(self) -> int:
        return self._d365(status=429, retry_after=1, count=self.rnd.randint(3, 10))

    def _d365_429_long(self) -> int:
        # Longer than the inline wait (RETRY_MAX_INLINE_WAIT): the message goes back to the queue.
        return self._d365(status=429, retry_after=8, count=self.rnd.randint(2, 5))

    def _d365_5xx(self) -> int:
        return self._d365(status=self.rnd.choice([500, 503]), count=self.rnd.randint(1, 3))

    def _d365_gateway_html(self) -> int:
        return self._d365(status=self.rnd.choice([502, 504]), html=True, count=self.rnd.randint(1, 2))

    def _d365_429_changeset(self) -> int:
        return self._d365(status=429, retry_after=1, where="batch_part", count=self.rnd.randint(1, 3))

    def _d365_latency(self) -> int:
        return self._d365(latency=round(self.rnd.uniform(0.2, 1.2), 2), count=self.rnd.randint(2, 6))

    def _d365_stall(self) -> int:
        # Past the client's timeout: the client gives up; the request is still served afterwards.
        return self._d365(latency=self.config.d365_timeout + 1, count=1)

    def _d365_token_revoked(self) -> int:
        self.stack.d365.expire_tokens()
        return 1

    def _d365_token_short(self) -> int:
        self.stack.d365.issuer.lifetime = SHORT_TOKEN_LIFETIME
        return 1

    def _d365_lost_answer(self) -> int:
        ways = ["reset", "502", "504"] + (["stall"] if self.timeouts else [])
        way = self.rnd.choice(ways)
        stall = self.config.d365_timeout + 2
        return self._d365(after_commit=way, stall=stall, method="POST", path=self.rnd.choice(LOST_PATHS))

    def _d365_late_commit(self) -> int:
        # After the client's timeout, well before the connector's settle time (D365's own timeout bounds it).
        delay = round(self.config.d365_timeout + self.rnd.uniform(0.5, 1.5), 2)
        return self._d365(commit_delay=delay, method="POST", path=self.rnd.choice(LOST_PATHS))

    # ---- Pipedrive ----------------------------------------------------------------------------
    def _pd_429(self) -> int:
        times = self.rnd.randint(2, 6)
        self.stack.pipedrive.inject_fault("/api/v2/*", 429, times=times, headers={"Retry-After": "1"},
                                          body={"success": False, "error": "Request over limit", "errorCode": 429})  # fmt: skip
        return times

    def _pd_5xx(self) -> int:
        times = self.rnd.randint(1, 3)
        self.stack.pipedrive.inject_fault("/api/v2/*", self.rnd.choice([500, 502, 503]), times=times)
        return times

    def _pd_latency(self) -> int:
        times = self.rnd.randint(2, 5)
        self.stack.pipedrive.inject_fault("/api/v2/*", None, times=times, latency=round(self.rnd.uniform(0.2, 1.0), 2))
        return times

    def _webhook_drop(self) -> int:
        times = self.rnd.randint(1, 3)
        self.stack.pipedrive.webhook_fault("drop", times)
        return times

    def _webhook_duplicate(self) -> int:
        times = self.rnd.randint(1, 3)
        self.stack.pipedrive.webhook_fault("duplicate", times)
        return times

    # ---- calm ---------------------------------------------------------------------------------
    async def calm(self) -> None:
        """Stop the chaos: no pending fault, normal token lifetime, held commits processed."""
        self.stack.d365.faults.clear()
        self.stack.d365.issuer.lifetime = self._token_lifetime
        await self.stack.d365.release_late_commits()
        self.stack.pipedrive.sim.faults.clear()
        dispatcher = self.stack.pipedrive.sim.dispatcher
        dispatcher.drop_next = dispatcher.duplicate_next = 0
