"""One queryable record per unit of work: an order build, a master push, a webhook, a poll.

Why records in the log message, not OpenTelemetry: on Flex Consumption the Python worker forwards
stdlib log records to Application Insights `traces` through the host, but drops `extra=` fields
(azure-functions-python-worker #694, #788, #1681). OpenTelemetry would carry them as
customDimensions, at the price of `azure-monitor-opentelemetry` and its SDK in the package and in
the cold-start path. So each record is one line, `TELEMETRY {json}`, that KQL reads with
`parse_json(substring(message, 10))` (docs/operations.md); locally the JSON log formatter shows the
same fields. Stdlib only and nothing done at import: `function_app` imports this lazily.

API calls are counted below the retry layer (every attempt, 429s per API) by `CountingTransport`,
into the operation that is current in the task's context.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("connector.telemetry")
PREFIX = "TELEMETRY "


@dataclass
class ApiCalls:
    """What one API answered during one operation (attempts, not logical calls: retries count)."""

    calls: int = 0
    throttled: int = 0  # 429 answers
    failed: int = 0  # 5xx answers and requests that got no answer
    limit: int | None = None  # x-ratelimit-limit of the last answer that had one
    remaining: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {
            "calls": self.calls,
            "throttled": self.throttled,
            "failed": self.failed,
            "limit": self.limit,
            "remaining": self.remaining,
        }


@dataclass
class Operation:
    name: str
    dimensions: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    apis: dict[str, ApiCalls] = field(default_factory=dict)

    def api(self, name: str) -> ApiCalls:
        return self.apis.setdefault(name, ApiCalls())

    def set(self, **dimensions: Any) -> None:
        self.dimensions.update({k: v for k, v in dimensions.items() if v is not None})

    def record(self, duration_ms: float) -> dict[str, Any]:
        calls = {name: api.as_dict() for name, api in sorted(self.apis.items())}
        return {
            "op": self.name,
            "outcome": self.outcome or "ok",
            "duration_ms": round(duration_ms, 1),
            **self.dimensions,
            "api_calls": sum(a.calls for a in self.apis.values()),
            "throttled": sum(a.throttled for a in self.apis.values()),
            "apis": calls,
        }


_current: ContextVar[Operation | None] = ContextVar("ml_connector_operation", default=None)


def current() -> Operation | None:
    return _current.get()


@asynccontextmanager
async def operation(name: str, **dimensions: Any) -> AsyncIterator[Operation]:
    """Measure the block as one operation and log its record when it ends (also when it raises).

    An exception sets the outcome to `error` (unless the block set one) and the `error` dimension to
    the exception's class; the exception propagates unchanged.
    """
    op = Operation(name)
    op.set(**dimensions)
    token = _current.set(op)
    started = time.perf_counter()
    try:
        yield op
    except BaseException as exc:
        op.outcome = op.outcome or "error"
        op.set(error=type(exc).__name__)
        raise
    finally:
        _current.reset(token)
        emit(op.record((time.perf_counter() - started) * 1000))


def emit(record: Mapping[str, Any]) -> None:
    """Log one telemetry record (an operation's, or a sample such as queue depths)."""
    text = json.dumps(record, default=str, separators=(",", ":"))
    log.info(PREFIX + "%s", text, extra={"telemetry": True})


def parse(message: str) -> dict[str, Any] | None:
    """The record in a log message, or None (tests and tools read records back with this)."""
    if not message.startswith(PREFIX):
        return None
    value = json.loads(message[len(PREFIX) :])
    return value if isinstance(value, dict) else None


def count_response(api: str, status: int | None, headers: Mapping[str, str] | None = None) -> None:
    """Count one answer (status None: no answer) against the current operation, if there is one."""
    op = _current.get()
    if op is None:
        return
    calls = op.api(api)
    calls.calls += 1
    if status is None or status >= 500:
        calls.failed += 1
    elif status == 429:
        calls.throttled += 1
    if headers is not None:
        limit, remaining = headers.get("x-ratelimit-limit"), headers.get("x-ratelimit-remaining")
        if limit is not None and limit.isdigit():
            calls.limit = int(limit)
        if remaining is not None and remaining.isdigit():
            calls.remaining = int(remaining)


def counting_transport(inner: httpx.AsyncBaseTransport, api: str) -> httpx.AsyncBaseTransport:
    """`inner`, counting each attempt into the current operation (goes under the retry transport)."""
    import httpx

    class CountingTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response = await inner.handle_async_request(request)
            except BaseException:
                count_response(api, None)
                raise
            count_response(api, response.status_code, response.headers)
            return response

        async def aclose(self) -> None:
            await inner.aclose()

    return CountingTransport()
