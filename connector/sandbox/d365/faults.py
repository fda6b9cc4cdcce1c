"""Fault injection (tests ask for the next N matching requests to fail or stall) and the request log."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
)


class Fault(BaseModel):
    """Applies to the next `count` requests matching `method` and `path` (a substring of the path)."""

    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(None, ge=100, le=599, description="Answer with this status; None = only latency.")
    retry_after: int | None = Field(None, ge=0, description="Retry-After header in seconds.")
    latency: float = Field(0.0, ge=0, le=60, description="Seconds to stall before answering.")
    count: int = Field(1, ge=1)
    method: str | None = None
    path: str | None = None
    html: bool = Field(False, description="Answer with a gateway HTML page instead of OData JSON.")
    message: str | None = None
    where: Literal["request", "batch_part"] = Field(
        "request", description="'batch_part': applies to an operation inside $batch (429 inside a part)."
    )

    def matches(self, method: str, path: str, where: str) -> bool:
        return (
            self.where == where
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path is None or self.path in path)
        )


class FaultBook:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def take(self, method: str, path: str, where: str = "request") -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path, where):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.faults.clear()


class LoggedRequest(BaseModel):
    """One request as the simulator saw it; never holds credentials (token bodies are not logged)."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    status: int
    in_batch: bool = False
    body: Any = None


class RequestLog:
    def __init__(self) -> None:
        self.entries: list[LoggedRequest] = []

    def add(self, method: str, path: str, query: dict[str, str], status: int, *, in_batch: bool = False,
            body: Any = None) -> None:  # fmt: skip
        self.entries.append(
            LoggedRequest(
                time=time.time(), method=method, path=path, query=query, status=status, in_batch=in_batch, body=body
            )
        )


class ServiceProtection(BaseModel):
    """User-based service protection limits (reference section 6), off unless configured.

    Real F&O uses 6000 requests / 300 s per user, app and web server; tests configure small numbers.
    """

    model_config = ConfigDict(extra="forbid")

    max_requests: int | None = Field(None, ge=1)
    window_seconds: float = Field(300.0, gt=0)
    retry_after: int | None = Field(None, ge=0, description="Fixed Retry-After; None = until the window frees.")


class Limiter:
    def __init__(self) -> None:
        self.config = ServiceProtection()
        self._hits: dict[str, list[float]] = {}

    def check(self, client: str) -> int | None:
        """Counts a request; returns the Retry-After seconds when over the limit (the request is not processed)."""
        if self.config.max_requests is None:
            return None
        now = time.monotonic()
        hits = [t for t in self._hits.get(client, []) if t > now - self.config.window_seconds]
        if len(hits) >= self.config.max_requests:
            self._hits[client] = hits
            wait = hits[0] + self.config.window_seconds - now
            return self.config.retry_after if self.config.retry_after is not None else max(1, int(wait + 0.999))
        hits.append(now)
        self._hits[client] = hits
        return None

    def message(self) -> str:
        return (
            f"Number of requests exceeded the limit of {self.config.max_requests} over the time window of "
            f"{int(self.config.window_seconds)} seconds."
        )
