"""The Pipedrive error table, one case per row: the error a caller gets, and whether the retry transport resends.

Both come from the same classification, so what is resent cannot drift from what the flows are told.
"""

from __future__ import annotations

import httpx
import pytest

from connector.errors import (
    AuthError,
    ConnectorError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RetryLaterError,
    TransientError,
    UnknownOutcomeError,
    ValidationError,
)
from connector.pipedrive.errors import PIPEDRIVE_ERRORS, call_name
from connector.retry import failure_error, resend_after_failure

JSON_ERROR = b'{"success": false, "error": "Bad things"}'
EDGE_PAGE = b"<html>This error is produced by Cloudflare</html>"
DAILY = {"x-daily-ratelimit-token-remaining": "0", "retry-after": "5"}

CASES = [
    # (id, status, body, headers, method, error the caller gets, resent by the transport)
    ("401", 401, JSON_ERROR, {}, "GET", AuthError, False),
    ("403 from the API", 403, JSON_ERROR, {}, "GET", PermanentError, False),
    ("403 edge block page", 403, EDGE_PAGE, {}, "GET", RateLimitedError, False),
    ("404", 404, JSON_ERROR, {}, "GET", NotFoundError, False),
    ("400", 400, JSON_ERROR, {}, "PATCH", ValidationError, False),
    ("429 burst", 429, JSON_ERROR, {"retry-after": "2"}, "POST", RateLimitedError, True),
    ("429 daily budget", 429, JSON_ERROR, DAILY, "GET", RetryLaterError, False),
    ("503 on a create", 503, JSON_ERROR, {}, "POST", TransientError, True),
    ("502 on a read", 502, EDGE_PAGE, {}, "GET", TransientError, True),
    ("502 on an update", 502, EDGE_PAGE, {}, "PATCH", TransientError, True),
    ("502 on a create", 502, EDGE_PAGE, {}, "POST", UnknownOutcomeError, False),
    ("500 on a create", 500, JSON_ERROR, {}, "POST", UnknownOutcomeError, False),
    ("409", 409, JSON_ERROR, {}, "POST", PermanentError, False),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "method", "cls", "resent"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_table_row(
    status: int, body: bytes, headers: dict[str, str], method: str, cls: type[ConnectorError], resent: bool
) -> None:
    request = httpx.Request(method, "https://acme.pipedrive.com/api/v2/products")
    response = httpx.Response(status, content=body, headers=headers, request=request)
    failure = PIPEDRIVE_ERRORS.classify(response)
    error = failure_error(request, failure, call_name(request))
    assert type(error) is cls and error.status == status
    assert str(error).startswith(f"Pipedrive {method} /api/v2/products") or cls is RetryLaterError
    assert resend_after_failure(request, failure) is resent


def test_the_daily_budget_waits_until_it_resets() -> None:
    request = httpx.Request("GET", "https://acme.pipedrive.com/api/v2/deals")
    short = httpx.Response(429, headers=DAILY, request=request)
    error = PIPEDRIVE_ERRORS.classify(short).error("x")
    assert isinstance(error, RetryLaterError) and error.delay > 60  # a 5 s Retry-After cannot be the daily reset
    long = httpx.Response(429, headers={**DAILY, "retry-after": "7200"}, request=request)
    error = PIPEDRIVE_ERRORS.classify(long).error("x")
    assert isinstance(error, RetryLaterError) and error.delay == 7200
