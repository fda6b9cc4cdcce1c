"""The ONE Pipedrive error table (status, body marker -> typed error), and the errors only this package raises.

Messages are built from the status, the method/path and Pipedrive's own `error`/`error_info`/
`errors` texts (which never echo credentials), so they are safe for logs and audit rows.
Bodies per docs/api-facts.md, Pipedrive §5: `{"success": false, "error": ..., "error_info": ...}`,
webhooks endpoints `{"success": false, "errors": {"field": ["reason"]}}`, 429 body UNCONFIRMED.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import httpx

from connector.error_table import ErrorTable, Row
from connector.errors import (
    AuthError,
    ConnectorError,
    NotFoundError,
    PermanentError,
    ProtocolError,
    RateLimitedError,
    RetryLaterError,
    TransientError,
    ValidationError,
)
from connector.pacing import server_wait


class WebhookPayloadError(ValidationError):
    """A webhook body is not a Pipedrive v1/v2 payload; `lines` name each thing that is wrong."""


class WebhookAuthError(AuthError):
    """A webhook request failed Basic-auth or signature verification."""


class FieldResolutionError(ValidationError):
    """A configured custom-field name or option label does not exist in the account's definitions."""


def api_messages(body: Any) -> list[str]:
    """Readable reasons out of any documented Pipedrive error body shape."""
    if not isinstance(body, dict):
        return []
    lines: list[str] = []
    for key in ("error", "message"):
        if isinstance(body.get(key), str) and body[key]:
            lines.append(body[key])
    errors = body.get("errors")
    if isinstance(errors, dict):
        for field, reasons in errors.items():
            texts = reasons if isinstance(reasons, list) else [reasons]
            lines.extend(f"{field}: {text}" for text in texts)
    code = body.get("code")
    if isinstance(code, str) and code:
        lines.append(f"code {code}")
    return lines


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        return None


def seconds_to_utc_midnight(now: datetime | None = None) -> float:
    current = now or datetime.now(UTC)
    midnight = datetime.combine(current.date() + timedelta(days=1), dt_time.min, tzinfo=UTC)
    return max(1.0, (midnight - current).total_seconds())


@dataclass(frozen=True)
class PipedriveAnswer:
    """What the table reads out of one Pipedrive error answer."""

    status: int
    body: Any  # the JSON body; None when it is not JSON (an HTML edge page)
    lines: list[str]
    reason: str
    retry_after: float | None
    daily_budget_spent: bool


def read_answer(response: httpx.Response) -> PipedriveAnswer:
    """Read an error answer once. The daily token budget is spent when a 429 says
    `x-daily-ratelimit-token-remaining: 0` (observed live, undocumented: UNCONFIRMED); it will not
    clear for hours, so its wait is the server's Retry-After if long, else the time to UTC midnight
    (the reset happens at midnight in the server's zone, which is UNCONFIRMED)."""
    body = _json_or_none(response)
    lines = api_messages(body)
    status = response.status_code
    wait = server_wait(response)
    spent = status == 429 and response.headers.get("x-daily-ratelimit-token-remaining", "").strip() == "0"
    if spent:
        wait = wait if wait is not None and wait > 60 else seconds_to_utc_midnight()
    reason = "; ".join(lines) if lines else (response.reason_phrase or "no reason given")
    return PipedriveAnswer(status, body, lines, reason, wait, spent)


def _answer(a: PipedriveAnswer, what: str) -> str:
    return f"{what} -> {a.status}: {a.reason}"


PIPEDRIVE_ERRORS = ErrorTable(
    read_answer,
    [
        Row(AuthError, _answer, statuses={401}),
        # Cloudflare's HTML block page after ignored 429s (api_token traffic): back off, do not hammer.
        Row(RateLimitedError, lambda a, w: f"{w} -> 403 (edge block page): back off", statuses={403},
            marker=lambda a: not isinstance(a.body, dict), resend=False),
        Row(PermanentError, _answer, statuses={402, 403}),
        Row(NotFoundError, _answer, statuses={404, 410}),
        Row(ValidationError, _answer, statuses={400, 415, 422}),
        Row(RetryLaterError, lambda a, w: f"Pipedrive daily API token budget exhausted; retry after {a.retry_after:.0f}s",
            statuses={429}, marker=lambda a: a.daily_budget_spent),
        Row(RateLimitedError, _answer, statuses={429}),
        Row(TransientError, _answer, statuses=range(500, 600)),
    ],
    otherwise=Row(PermanentError, _answer),
)  # fmt: skip


def call_name(request: httpx.Request) -> str:
    """How messages name a call: `Pipedrive GET /api/v2/deals/1` (never its query: it may hold a term)."""
    return f"Pipedrive {request.method} {request.url.path}"


def error_for(response: httpx.Response) -> ConnectorError:
    """The table's error for a non-2xx answer, whatever the method (tests and tools; the client uses the
    transport's classification)."""
    return PIPEDRIVE_ERRORS.classify(response).error(call_name(response.request))


def decode_envelope(response: httpx.Response) -> dict[str, Any]:
    """The JSON envelope of a 2xx response; anything else is a ProtocolError naming what is wrong."""
    name = call_name(response.request)
    body = _json_or_none(response)
    if body is None:
        ctype = response.headers.get("content-type", "?")
        raise ProtocolError(f"{name}: response is not JSON (content-type {ctype})", status=response.status_code)
    if not isinstance(body, dict):
        raise ProtocolError(f"{name}: expected a JSON object envelope, got {type(body).__name__}")
    if body.get("success") is False:
        raise ProtocolError(f"{name}: success=false in a {response.status_code} response: {api_messages(body)}")
    return body
