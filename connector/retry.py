"""One retry layer for every outbound API call (Pipedrive and D365), under the clients as an httpx transport.

Both clients get the same behaviour, and tests exercise it against the simulators over real HTTP:

- Every attempt starts through the credential's `RateLimitPacer` (connector.pacing).
- An answer is classified once by the API's error table (connector.error_table); the row says
  whether it is worth resending. A server-named wait (429, 503 with Retry-After) holds the pacer,
  so the resend and every other request of the credential wait it out; other transient failures
  back off exponentially with jitter; anything else goes back to the client at once.
- Method safety: a request is resent only when that cannot repeat a write. A POST is resent only
  when it never left (connect error or timeout, no pooled connection) or the server said it did
  nothing (429, 503, a failed changeset); the client turns any other lost POST into
  UnknownOutcomeError, so the flow looks before it creates again.
- A wait longer than `max_inline_wait` raises RetryLaterError carrying the delay, so a queue worker
  re-queues with a visibility delay instead of sleeping in the function.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from connector.error_table import ErrorTable, Failure, Row
from connector.errors import (
    ConnectorError,
    PermanentError,
    RateLimitedError,
    RetryLaterError,
    TransientError,
    UnknownOutcomeError,
)
from connector.pacing import RateClasses, RateLimitPacer, Sleep, only_default_class, server_wait

# The transport errors after which a request went unanswered; each client maps them with `no_answer`.
UNANSWERED = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
Classify = Callable[[httpx.Response], Failure | None]
Resendable = Callable[[httpx.Request], bool]


class RetryPolicy(BaseModel):
    """Tunable from settings; the defaults suit a queue worker on a Consumption plan."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(6, ge=1, description="Tries per request, the first included.")
    backoff_initial: float = Field(0.5, ge=0, description="First backoff in seconds for 5xx/timeouts.")
    backoff_max: float = Field(20.0, ge=0, description="Cap of one backoff in seconds.")
    jitter: float = Field(0.5, ge=0, description="Random seconds added to each backoff.")
    max_inline_wait: float = Field(30.0, ge=0, description="Longest wait slept in-process; longer -> RetryLater.")
    pace_below_remaining: int = Field(
        0, ge=0, description="Hold requests when x-ratelimit-remaining is at or below this."
    )
    instances: int = Field(
        1, ge=1, description="Processes sharing one credential's rate limit; each paces itself to its share."
    )


# --- method safety ------------------------------------------------------------------------------


def idempotent(request: httpx.Request) -> bool:
    """Sending it twice does what sending it once does: every method we use but POST."""
    return request.method != "POST"


def never_left(exc: Exception) -> bool:
    """The request failed before any of it reached the server (refused, no connection, no pooled slot)."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def resend_after_no_answer(request: httpx.Request, exc: Exception, resendable: Resendable = idempotent) -> bool:
    return never_left(exc) or resendable(request)


def resend_after_failure(request: httpx.Request, failure: Failure, resendable: Resendable = idempotent) -> bool:
    """Whether the transport sends the request again after this failed answer (while attempts last)."""
    return failure.resends and (failure.nothing_done or resendable(request))


def no_answer(request: httpx.Request, exc: Exception, what: str) -> TransientError:
    """The error for a request that got no answer: UnknownOutcomeError when it may have been acted on."""
    name = type(exc).__name__
    if not resend_after_no_answer(request, exc):
        return UnknownOutcomeError(f"{what}: answer lost ({name}); it may have been saved")
    return TransientError(f"{what}: no answer ({name})")


def failure_error(request: httpx.Request, failure: Failure, what: str) -> ConnectorError:
    """The error a failed answer means: its row's, or UnknownOutcomeError when the transport would have
    resent it but for method safety (a POST that met a gateway 502/504 or an untyped 500 may have been saved)."""
    error = failure.error(what)
    if failure.resends and not resend_after_failure(request, failure):
        return UnknownOutcomeError(f"{error}; it may have been saved", status=failure.status)
    return error


_FAILURE = "connector.failure"


def failure_of(response: httpx.Response, classify: Classify) -> Failure | None:
    """The answer's failure (None: it succeeded), classified once: by the transport, or now for an answer
    that did not pass through one."""
    extensions: dict[str, Any] = response.extensions
    if _FAILURE not in extensions:
        extensions[_FAILURE] = classify(response)
    failure: Failure | None = extensions[_FAILURE]
    return failure


# --- the table of a transport built without an API's own: plain HTTP statuses ------------------


@dataclass(frozen=True)
class HttpReading:
    status: int
    lines: list[str]
    retry_after: float | None


def _read_http(response: httpx.Response) -> HttpReading:
    return HttpReading(response.status_code, [], server_wait(response))


def _http_message(reading: HttpReading, what: str) -> str:
    return f"{what} -> {reading.status}"


HTTP_ERRORS = ErrorTable(
    _read_http,
    [
        Row(RateLimitedError, _http_message, statuses={429}),
        Row(TransientError, _http_message, statuses=range(500, 600)),
    ],
    otherwise=Row(PermanentError, _http_message),
)


# --- the transport ------------------------------------------------------------------------------


class _Retry(Exception):
    """Internal signal: try again, after `delay` (None: the backoff's)."""

    def __init__(
        self, delay: float | None, response: httpx.Response | None = None, cause: Exception | None = None
    ) -> None:
        super().__init__("retry")
        self.delay = delay
        self.response = response
        self.cause = cause


class RetryTransport(httpx.AsyncBaseTransport):
    """Wraps a real transport with the shared retry and pacing policy.

    `classify` is the API's error table (it may also find a failure inside a 2xx answer, as a D365
    changeset's); `resendable` says which requests may be sent twice whatever happened to the first.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        *,
        classify: Classify = HTTP_ERRORS.failure,
        resendable: Resendable = idempotent,
        pacer: RateLimitPacer | None = None,
        sleep: Sleep = asyncio.sleep,
        rate_classes: RateClasses = only_default_class,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self.policy = policy or RetryPolicy()
        self._classify = classify
        self._resendable = resendable
        self._sleep = sleep
        self._pacer = pacer or RateLimitPacer(self.policy, sleep=sleep)
        self._rate_classes = rate_classes
        self._backoff = wait_exponential_jitter(
            multiplier=self.policy.backoff_initial, max=self.policy.backoff_max, jitter=self.policy.jitter
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retry) and exc.delay is not None:
            return exc.delay
        return float(self._backoff(state))

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:  # a wait the pacer holds is slept there, once
            await self._sleep(seconds)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._pause,
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
        classes = self._rate_classes(request)
        await self._pacer.wait(classes)
        response: httpx.Response | None = None
        try:
            response = await self._inner.handle_async_request(request)
        except UNANSWERED as exc:
            if resend_after_no_answer(request, exc, self._resendable):
                raise _Retry(None, cause=exc) from exc
            raise
        finally:
            self._pacer.finished(response, classes)  # the answer (or failure) is in: the request starts ageing out
        response.request = request  # the table may judge by the request (httpx sets it later anyway)
        await response.aread()
        failure = failure_of(response, self._classify)
        if failure is None:
            return response
        if issubclass(failure.row.error, RetryLaterError):  # a wait no worker should spend
            if failure.wait is not None:
                for name in classes:  # ... nor any other request of this credential: each would draw a 429
                    self._pacer.hold(failure.wait, name)
            raise failure.error(f"{request.method} {request.url.path}")
        if not resend_after_failure(request, failure, self._resendable):
            return response
        wait = failure.wait
        if wait is None:
            raise _Retry(None, response=response)
        if wait > self.policy.max_inline_wait:
            raise RetryLaterError(
                f"{request.method} {request.url.path} throttled; retry after {wait:.0f}s",
                delay=wait,
                status=response.status_code,
            )
        self._pacer.hold(wait, classes[0])  # the resend and the credential's other requests wait it out
        raise _Retry(0.0, response=response)

    async def aclose(self) -> None:
        await self._inner.aclose()
