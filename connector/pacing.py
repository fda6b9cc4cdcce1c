"""Pacing under a server's rate limits: the server's named waits, and one sliding log per rate-limit class.

The retry transport (connector.retry) starts every attempt through a `RateLimitPacer` shared by all
requests of one credential, so both API clients wait the same way and never hammer a limit.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from connector.errors import RetryLaterError

if TYPE_CHECKING:
    from connector.retry import RetryPolicy

Sleep = Callable[[float], Awaitable[None]]


def server_wait(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from Retry-After or x-ratelimit-reset; None if it did not say."""
    value = response.headers.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
                return max(0.0, (parsed - current).total_seconds())
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset))
        except ValueError:
            return None
    return None


DEFAULT_CLASS = "default"
# Which rate-limit classes a request counts in, most specific first (its answer's headers describe
# the first). Every request counts in DEFAULT_CLASS too, so a class of its own never undercounts.
RateClasses = Callable[[httpx.Request], tuple[str, ...]]


def only_default_class(request: httpx.Request) -> tuple[str, ...]:
    return (DEFAULT_CLASS,)


class _Budget:
    """One rate-limit class's view: its limit, window, sliding log and server-ordered hold."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.not_before = 0.0
        self.limit: int | None = None  # this class's x-ratelimit-limit; None: never pace from the log
        self.window = 0.0  # the largest x-ratelimit-reset seen: the rolling window's length
        self.in_flight = 0  # started, no answer yet: counted for as long as they run
        self.answered: deque[float] = deque()  # answer times of requests still inside the window
        self.answer = asyncio.Event()  # set by finished(): a waiter blocked on in-flight requests re-checks


class RateLimitPacer:
    """Paces requests of one credential under the server's rate limits; shared by all its requests.

    Each rate-limit class (Pipedrive: the general burst limit, and the Search API's own lower one)
    has its own budget, learnt from the headers of its own answers; a search counts in both. Two
    views per class, both needed:

    - Our own sliding log (once `x-ratelimit-limit` is known): a request counts from its start until
      one window after its response (the server counted it somewhere in between, so this never
      undercounts), and a new one starts only while fewer than the budget are counted. Requests then
      flow at the limit's rate instead of in bursts followed by a wait for the whole window. The
      budget is the limit less `pace_below_remaining` and one slot of headroom, split evenly when
      `instances` processes share the credential (the sum stays under the limit, so they never draw a
      429, and another caller of the token finds its slot).
    - The server's view: on a 429, or `remaining` at or below `pace_below_remaining` (another
      process on the same token, or the opening volley sent before any headers were known), hold
      the class until the server's reset.

    APIs without these headers (D365) are never paced, only held by `hold()`. Waits longer than
    `max_inline_wait` raise RetryLaterError. Pair every `wait()` with one `finished()` of the same classes.
    """

    def __init__(
        self, policy: RetryPolicy, *, sleep: Sleep = asyncio.sleep, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        self._budgets: dict[str, _Budget] = {}

    def _budget(self, name: str) -> _Budget:
        budget = self._budgets.get(name)
        if budget is None:
            budget = self._budgets[name] = _Budget()
        return budget

    def limit(self, rate_class: str = DEFAULT_CLASS) -> int | None:
        """The last `x-ratelimit-limit` seen for a class (None before any)."""
        return self._budget(rate_class).limit

    def observe(self, response: httpx.Response, rate_class: str = DEFAULT_CLASS) -> None:
        """Learn from a response's rate-limit headers (ignored when it has none)."""
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is None:
            return
        try:
            left = int(float(remaining))
        except ValueError:
            return
        budget = self._budget(rate_class)
        if left <= self._policy.pace_below_remaining or response.status_code == 429:
            wait = server_wait(response)
            if wait is not None:
                budget.not_before = max(budget.not_before, self._clock() + wait)
        try:
            limit = int(float(response.headers["x-ratelimit-limit"]))
            reset = max(0.0, float(response.headers["x-ratelimit-reset"]))
        except (KeyError, ValueError):
            return
        # The window is the largest reset seen: the first answer on an empty rolling window reports
        # (about) its whole length, later ones less. Whole-second values (Pipedrive's documented
        # form) count as at least 1 s; fractions (the simulator's short test windows) as given.
        budget.limit = limit
        budget.window = max(budget.window, max(reset, 1.0) if reset.is_integer() else reset)

    def finished(self, response: httpx.Response | None = None, classes: tuple[str, ...] = (DEFAULT_CLASS,)) -> None:
        """A request started by `wait(classes)` got this answer (None: it failed): it now ages out."""
        if response is not None:
            self.observe(response, classes[0])
        now = self._clock()
        for name in classes:
            budget = self._budget(name)
            budget.in_flight = max(0, budget.in_flight - 1)
            if budget.limit is not None and budget.window > 0:
                budget.answered.append(now)
            budget.answer.set()

    def hold(self, until_seconds: float, rate_class: str = DEFAULT_CLASS) -> None:
        """Block new requests of a class for a while (after a 429 without rate-limit headers)."""
        budget = self._budget(rate_class)
        budget.not_before = max(budget.not_before, self._clock() + until_seconds)

    async def wait(self, classes: tuple[str, ...] = (DEFAULT_CLASS,)) -> None:
        """Return when a request of these classes may start, and count it as started in each.

        Classes are taken one at a time in the given order (specific first): a slot won in one is
        held while the request queues for the next, so a search waiting for its own window never
        holds up other calls, and searches waiting for the general window do not starve their own.
        """
        taken: list[_Budget] = []
        try:
            for name in classes:
                budget = self._budget(name)
                async with budget.lock:
                    await self._room(budget)
                    budget.in_flight += 1
                taken.append(budget)
        except BaseException:
            for budget in taken:  # give back what was won: this request will not start
                budget.in_flight -= 1
                budget.answer.set()
            raise

    async def _room(self, budget: _Budget) -> None:
        while True:  # each wait is slept once (an injected test sleep may not move the clock)
            held = budget.not_before - self._clock()
            if held > 0:
                await self._sleep(self._inline(held))
            delay = self._log_delay(budget)
            if delay is None:  # the window is full of requests still running: wait for an answer
                budget.answer.clear()
                await budget.answer.wait()
                continue  # a 429 may have come in meanwhile: check everything again
            if delay > 0:
                await self._sleep(self._inline(delay))
            return

    def _inline(self, delay: float) -> float:
        if delay > self._policy.max_inline_wait:
            raise RetryLaterError(f"rate limit window resets in {delay:.1f}s", delay=delay, status=429)
        return delay

    def share_of(self, limit: int) -> int:
        """Requests this process may have counted in one window of a class with this limit."""
        # One slot of the token's limit stays free however many processes share it: the poll timer, a
        # webhook's read or the doctor draw on the same token, and a window filled to the last slot turns
        # any of them into a 429 that every sharing process then waits out in step.
        return max(1, (limit - self._policy.pace_below_remaining - 1) // self._policy.instances)

    def _log_delay(self, budget: _Budget) -> float | None:
        """Seconds until the sliding log has room (0: now), None if only a running request can free it."""
        if budget.limit is None or budget.window <= 0:
            return 0.0
        now = self._clock()
        while budget.answered and budget.answered[0] <= now - budget.window:
            budget.answered.popleft()
        excess = budget.in_flight + len(budget.answered) - self.share_of(budget.limit) + 1  # must age out first
        if excess <= 0:
            return 0.0
        if excess > len(budget.answered):
            return None
        return budget.answered[excess - 1] + budget.window - now
