"""Fault injection (tests ask for the next N matching requests to fail, stall or lose their answer)
and the request log."""

from __future__ import annotations

import http
import time
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AfterCommit = Literal["reset", "502", "504", "stall", "truncated"]


def gateway_html(status: int = 502) -> str:
    """The page Azure Application Gateway answers with when the backend fails or times out."""
    title = f"{status} {'Gateway Time-out' if status == 504 else http.HTTPStatus(status).phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
    )


GATEWAY_HTML = gateway_html(502)


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
    # Lost answers: the request IS processed (a write commits), the client just never learns it.
    after_commit: AfterCommit | None = Field(
        None,
        description="Process the request, then lose its answer: 'reset' aborts the connection, '502'/'504' "
        "answer a gateway HTML page, 'stall' holds the answer `stall` seconds (beyond the client's timeout), "
        "'truncated' answers the real status with half the body (a proxy that cut it short but framed it).",
    )
    stall: float = Field(90.0, ge=0, le=3600, description="Seconds an after_commit='stall' answer is held.")
    commit_delay: float = Field(
        0.0, ge=0, le=3600, description="Hold the request this long, then process it whether or not the client "
        "still waits (a commit that lands after the client gave up).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_outcome(self) -> Fault:
        lost = self.after_commit is not None or self.commit_delay > 0
        if lost and self.status is not None:
            raise ValueError("status and after_commit/commit_delay exclude each other: a status means 'not processed'")
        if lost and self.where != "request":
            raise ValueError("after_commit/commit_delay apply to whole requests ($batch included), not batch parts")
        return self

    @property
    def kind(self) -> str:
        """A short name for counting: '429', '502-html', 'latency', 'lost-reset', 'late-commit', ..."""
        if self.after_commit is not None:
            return f"lost-{self.after_commit}"
        if self.commit_delay:
            return "late-commit"
        if self.status is not None:
            return f"{self.status}{'-html' if self.html else ''}{'-part' if self.where == 'batch_part' else ''}"
        return "latency" + ("-part" if self.where == "batch_part" else "")

    def matches(self, method: str, path: str, where: str) -> bool:
        return (
            self.where == where
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path is None or self.path in path)
        )


class FaultBook:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.fired: Counter[str] = Counter()  # faults that met a request, by kind

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def take(self, method: str, path: str, where: str = "request") -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path, where):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                self.fired[fault.kind] += 1
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
    lost: str | None = Field(None, description="The lost-answer fault applied (the client did not get `status`).")


class RequestLog:
    def __init__(self) -> None:
        self.entries: list[LoggedRequest] = []

    def add(self, method: str, path: str, query: dict[str, str], status: int, *, in_batch: bool = False,
            body: Any = None, lost: str | None = None) -> None:  # fmt: skip
        entry = LoggedRequest(time=time.time(), method=method, path=path, query=query, status=status,
                              in_batch=in_batch, body=body, lost=lost)  # fmt: skip
        self.entries.append(entry)


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
