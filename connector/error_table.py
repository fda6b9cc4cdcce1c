"""An API's error table: every error answer is read once and matched to one row (status, body marker, error class).

Each client keeps ONE such table (connector/d365/errors.py, connector/pipedrive/errors.py). The retry
transport (connector.retry) classifies an answer with it, and the caller raises the row's error from
that same classification: the body is parsed once, and what is resent cannot drift from what the
flows are told (a row is resent in-process when its error class is transient and its wait short,
unless the row says otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx

from connector.errors import (
    ConnectorError,
    RateLimitedError,
    RetryLaterError,
    TransientError,
    ValidationError,
)

# Statuses by which a server says it did not act on the request: resending is safe for any method.
NOT_PROCESSED = frozenset({429, 503})


class Reading(Protocol):
    """What an API's reader takes out of one error answer; the table's rows test and word it."""

    @property
    def status(self) -> int: ...
    @property
    def lines(self) -> list[str]: ...  # readable reasons (ValidationError.lines)
    @property
    def retry_after(self) -> float | None: ...  # the server's wait in seconds, when it named one


R = TypeVar("R", bound=Reading)


@dataclass(frozen=True)
class Row(Generic[R]):
    """Answers whose status is in `statuses` (any when None) and whose reading passes `marker` are `error`."""

    error: type[ConnectorError]
    message: Callable[[R, str], str]  # (reading, the operation's name) -> the error's text
    statuses: Container[int] | None = None
    marker: Callable[[R], bool] | None = None
    resend: bool | None = None  # resend in-process; None: when `error` is transient (a RetryLater wait is not)

    def matches(self, reading: R) -> bool:
        return (self.statuses is None or reading.status in self.statuses) and (
            self.marker is None or self.marker(reading)
        )

    @property
    def resends(self) -> bool:
        if self.resend is not None:
            return self.resend
        return issubclass(self.error, TransientError) and not issubclass(self.error, RetryLaterError)

    def build(self, reading: R, what: str) -> ConnectorError:
        text, status = self.message(reading, what), reading.status
        if issubclass(self.error, RetryLaterError):
            return self.error(text, delay=reading.retry_after or 0.0, status=status)
        if issubclass(self.error, RateLimitedError):
            return self.error(text, retry_after=reading.retry_after, status=status)
        if issubclass(self.error, ValidationError):
            return self.error(text, lines=reading.lines, status=status)
        return self.error(text, status=status)


@dataclass(frozen=True)
class Failure:
    """One error answer as its API's table classified it: the error to raise, and whether it may be resent."""

    row: Row[Any]
    reading: Reading
    nothing_done: bool  # the server said it did not act (429, 503, a failed changeset): any method may be resent

    @property
    def status(self) -> int:
        return self.reading.status

    @property
    def resends(self) -> bool:
        """Worth resending in-process (transient, and not an answer to back off from for longer)."""
        return self.row.resends

    @property
    def wait(self) -> float | None:
        """The server's named wait before a resend (only where it said it did nothing)."""
        return self.reading.retry_after if self.nothing_done else None

    def error(self, what: str) -> ConnectorError:
        return self.row.build(self.reading, what)


class ErrorTable(Generic[R]):
    """Rows tried in order (the first match wins), then `otherwise`."""

    def __init__(self, read: Callable[[httpx.Response], R], rows: Sequence[Row[R]], otherwise: Row[R]) -> None:
        self._read = read
        self.rows = tuple(rows)
        self.otherwise = otherwise

    def classify(self, response: httpx.Response, *, nothing_done: bool | None = None) -> Failure:
        """Read an error answer (its body must be loaded) and find its row."""
        reading = self._read(response)
        row = next((r for r in self.rows if r.matches(reading)), self.otherwise)
        done = reading.status in NOT_PROCESSED if nothing_done is None else nothing_done
        return Failure(row, reading, done)

    def failure(self, response: httpx.Response) -> Failure | None:
        """The failure of an answer with an error status (None for any other answer)."""
        return self.classify(response) if response.status_code >= 400 else None
