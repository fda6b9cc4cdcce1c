"""The error taxonomy shared by both API clients and the flows.

Flows decide what to do from the class alone (docs/architecture.md, "Errors"):
transient -> retry (or re-queue when the wait is long), permanent -> job failed with a
reason a person can act on, duplicate -> adopt the existing record.
Messages never carry secrets: clients build them from status, codes and API texts only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class ConfigError(ConnectorError):
    """A setting, secret or mapping file is missing or malformed; fix configuration, then restart."""


class TransientError(ConnectorError):
    """Worth retrying as is: 5xx, timeouts, connection resets, throttling."""

    retryable = True


class RateLimitedError(TransientError):
    """429 from an API; `retry_after` is the server's wait in seconds when it gave one."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = 429, detail: object = None
    ) -> None:
        super().__init__(message, status=status, detail=detail)
        self.retry_after = retry_after


class RetryLaterError(TransientError):
    """The wait needed is longer than a worker should sleep: re-queue with this visibility delay."""

    def __init__(self, message: str, *, delay: float, status: int | None = None, detail: object = None) -> None:
        super().__init__(message, status=status, detail=detail)
        self.delay = delay


class UnknownOutcomeError(TransientError):
    """A write reached (or may have reached) the server but its answer was lost: timeout after sending,
    connection reset, a gateway 502/504. The record may exist: look before creating again (after a settle
    time), never resend blindly."""


class PermanentError(ConnectorError):
    """Retrying will not help until a person changes data or configuration."""


class AuthError(PermanentError):
    """Credentials rejected after one renewal attempt."""


class NotFoundError(PermanentError):
    """The addressed record does not exist."""


class ValidationError(PermanentError):
    """The API refused the data (Pipedrive 400, D365 Infolog); `lines` holds readable reasons."""

    def __init__(
        self, message: str, *, lines: list[str] | None = None, status: int | None = None, detail: object = None
    ) -> None:
        super().__init__(message, status=status, detail=detail)
        self.lines = lines or []


class DuplicateError(ConnectorError):
    """The record already exists (D365 "The record already exists."): look it up and adopt it."""


class ProtocolError(PermanentError):
    """The API answered something that is not its documented contract (HTML, bad JSON, wrong shape)."""


@contextlib.contextmanager
def written(*, creates: bool = True) -> Iterator[None]:
    """Reading the answer to a create that came back as done. One that cannot be read (a body cut short, a
    proxy's page, a record of the wrong shape) may still have been saved: UnknownOutcomeError, so the flow
    keeps its intent and looks before it creates again (a ProtocolError would let a replay create blindly).
    `creates=False` (a read, or a write that is safe to repeat) leaves a ProtocolError as it is."""
    try:
        yield
    except ProtocolError as exc:
        if not creates:
            raise
        raise UnknownOutcomeError(f"{exc}; the write may have been saved", status=exc.status) from None
