"""One retry and pacing policy for every outbound API call (Pipedrive and D365).

It lives in an httpx transport, under the clients, so both clients get the same behaviour and
tests exercise it against the simulators over real HTTP:

- 429: wait `Retry-After` (seconds or HTTP date) or `x-ratelimit-reset` (Pipedrive, seconds).
- `x-ratelimit-remaining` at or below a threshold: hold the next request until the window resets.
- 5xx (as judged by the client's classifier) and timeouts/connection errors: capped exponential
  backoff with jitter.
- Everything else (other 4xx) is returned at once for the client to map to a typed error.
- A wait longer than `max_inline_wait` raises RetryLaterError carrying the delay, so a queue worker
  re-queues with a visibility delay instead of sleeping in the function.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from connector.errors import RetryLaterError

Sleep = Callable[[float], Awaitable[None]]
RetryableResponse = Callable[[httpx.Response], bool]
# Decides whether a transport error is worth retrying for this request (default: always). A client
# passes one when a retry could repeat a write the server may already have done (e.g. a POST that timed out).
RetryableError = Callable[[httpx.Request, Exception], bool]


class RetryPolicy(BaseModel):
    """Tunable from settings; the defaults suit a queue worker on a Consumption plan."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(6, ge=1, description="Tries per request, the first included.")
    backoff_initial: float = Field(0.5, ge=0, description="First backoff in seconds for 5xx/timeouts.")
    backoff_max: float = Field(20.0, ge=0, description="Cap of one backoff in seconds.")
    jitter: float = Field(0.5, ge=0, description="Random seconds added to each backoff.")
    max_inline_wait: float = Field(30.0, ge=0, description="Longest wait slept in-process; longer -> RetryLater.")
    pace_below_remaining: int = Field(
        1, ge=0, description="Hold requests when x-ratelimit-remaining is at or below this."
    )


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


def default_retryable(response: httpx.Response) -> bool:
    """429 and gateway-type 5xx are retryable; clients refine 500 (D365 business errors are not)."""
    return response.status_code == 429 or response.status_code >= 500


class RateLimitPacer:
    """Remembers the last rate-limit headers and holds requests until the window resets when low.

    One pacer per credential (Pipedrive limits are per token), shared by all requests of a client.
    """

    def __init__(
        self, policy: RetryPolicy, *, sleep: Sleep = asyncio.sleep, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        self._not_before = 0.0
        self._lock = asyncio.Lock()
        # Window budget from x-ratelimit-limit/-remaining/-reset (APIs that send them, e.g. Pipedrive):
        # requests we may still start before `_window_end`, so concurrent callers do not all rush
        # in when a window resets. None until such headers are seen: other APIs are unaffected.
        self._limit: int | None = None
        self._slots: int | None = None
        self._window_end = 0.0
        self._window_len = 0.0

    def observe(self, response: httpx.Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is None:
            return
        try:
            left = int(float(remaining))
        except ValueError:
            return
        low = left <= self._policy.pace_below_remaining
        if low or response.status_code == 429:
            wait = server_wait(response)
            if wait is not None:
                self._not_before = max(self._not_before, self._clock() + wait)
        self._track_window(response, left)

    def _track_window(self, response: httpx.Response, left: int) -> None:
        try:
            limit = int(float(response.headers["x-ratelimit-limit"]))
            reset = max(0.0, float(response.headers["x-ratelimit-reset"]))
        except (KeyError, ValueError):
            return
        now = self._clock()
        self._limit = limit
        self._window_len = max(self._window_len, reset)
        if self._slots is None or now >= self._window_end:
            self._slots, self._window_end = left, now + reset
        else:  # in-flight requests may have been counted by the server after this answer
            self._slots = min(self._slots, left)

    async def _take_slot(self) -> None:
        if self._slots is None or self._limit is None:
            return
        now = self._clock()
        if now >= self._window_end:
            self._slots, self._window_end = self._limit, now + self._window_len
        if self._slots <= self._policy.pace_below_remaining:
            delay = self._window_end - now
            if delay > self._policy.max_inline_wait:
                raise RetryLaterError(f"rate limit window resets in {delay:.1f}s", delay=delay, status=429)
            await self._sleep(delay)
            self._slots, self._window_end = self._limit, self._clock() + self._window_len
        self._slots -= 1

    def hold(self, until_seconds: float) -> None:
        """Block new requests for a while (after a 429 without rate-limit headers)."""
        self._not_before = max(self._not_before, self._clock() + until_seconds)

    async def wait(self) -> None:
        async with self._lock:
            delay = self._not_before - self._clock()
            if delay > 0:
                if delay > self._policy.max_inline_wait:
                    raise RetryLaterError(f"rate limit window resets in {delay:.1f}s", delay=delay, status=429)
                await self._sleep(delay)
            await self._take_slot()


class _Retry(Exception):
    """Internal signal: try again, after `delay` if the server named one."""

    def __init__(
        self, delay: float | None, response: httpx.Response | None = None, cause: Exception | None = None
    ) -> None:
        super().__init__("retry")
        self.delay = delay
        self.response = response
        self.cause = cause


class RetryTransport(httpx.AsyncBaseTransport):
    """Wraps a real transport with the shared retry/pacing policy."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        *,
        retryable: RetryableResponse = default_retryable,
        pacer: RateLimitPacer | None = None,
        sleep: Sleep = asyncio.sleep,
        retryable_error: RetryableError | None = None,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self.policy = policy or RetryPolicy()
        self._retryable = retryable
        self._retryable_error = retryable_error
        self._sleep = sleep
        self.pacer = pacer or RateLimitPacer(self.policy, sleep=sleep)
        self._backoff = wait_exponential_jitter(
            multiplier=self.policy.backoff_initial, max=self.policy.backoff_max, jitter=self.policy.jitter
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retry) and exc.delay is not None:
            return exc.delay
        return float(self._backoff(state))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(request)
        except _Retry as last:
            if last.response is not None:
                return last.response
            assert last.cause is not None
            raise last.cause from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        await self.pacer.wait()
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            if self._retryable_error is not None and not self._retryable_error(request, exc):
                raise
            raise _Retry(None, cause=exc) from exc
        response.request = request  # lets `retryable` judge by method (httpx sets it later anyway)
        self.pacer.observe(response)
        if response.status_code < 400:
            return response
        await response.aread()
        if not self._retryable(response):
            return response
        delay = server_wait(response) if response.status_code in (429, 503) else None
        if delay is not None and delay > self.policy.max_inline_wait:
            raise RetryLaterError(
                f"{request.method} {request.url.path} throttled; retry after {delay:.0f}s",
                delay=delay,
                status=response.status_code,
            )
        if response.status_code == 429 and delay is None:
            delay = None  # unknown wait: exponential backoff
        raise _Retry(delay, response=response)

    async def aclose(self) -> None:
        await self._inner.aclose()
