"""Pipedrive status -> typed error table, and the errors only this package raises.

Messages are built from the status, the method/path and Pipedrive's own `error`/`error_info`/
`errors` texts (which never echo credentials), so they are safe for logs and audit rows.
Bodies per reference/pipedrive-api.md section 5: `{"success": false, "error": ..., "error_info": ...}`,
webhooks endpoints `{"success": false, "errors": {"field": ["reason"]}}`, 429 body UNCONFIRMED.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from connector.errors import (
    AuthError,
    ConnectorError,
    NotFoundError,
    PermanentError,
    ProtocolError,
    RateLimitedError,
    TransientError,
    ValidationError,
)
from connector.retry import server_wait


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
    except ValueError:
        return None


def error_for(response: httpx.Response) -> ConnectorError:
    """Map a non-2xx Pipedrive response to the shared taxonomy (see connector/errors.py)."""
    status = response.status_code
    where = f"{response.request.method} {response.request.url.path}"
    body = _json_or_none(response)
    lines = api_messages(body)
    reason = "; ".join(lines) if lines else (response.reason_phrase or "no reason given")
    message = f"Pipedrive {where} -> {status}: {reason}"
    detail = {"status": status, "path": response.request.url.path}
    if status == 401:
        return AuthError(message, status=status, detail=detail)
    if status == 403 and not isinstance(body, dict):
        # Cloudflare HTML block after ignoring 429s (api_token traffic): back off, do not hammer.
        return RateLimitedError(f"Pipedrive {where} -> 403 (edge block page): back off", status=status, detail=detail)
    if status in (402, 403):
        return PermanentError(message, status=status, detail=detail)
    if status in (404, 410):
        return NotFoundError(message, status=status, detail=detail)
    if status in (400, 415, 422):
        return ValidationError(message, lines=lines, status=status, detail=detail)
    if status == 429:
        return RateLimitedError(message, retry_after=server_wait(response), status=status, detail=detail)
    if status >= 500:
        return TransientError(message, status=status, detail=detail)
    return PermanentError(message, status=status, detail=detail)


def decode_envelope(response: httpx.Response) -> dict[str, Any]:
    """The JSON envelope of a 2xx response; anything else is a ProtocolError naming what is wrong."""
    where = f"{response.request.method} {response.request.url.path}"
    body = _json_or_none(response)
    if body is None:
        ctype = response.headers.get("content-type", "?")
        raise ProtocolError(
            f"Pipedrive {where}: response is not JSON (content-type {ctype})", status=response.status_code
        )
    if not isinstance(body, dict):
        raise ProtocolError(f"Pipedrive {where}: expected a JSON object envelope, got {type(body).__name__}")
    if body.get("success") is False:
        raise ProtocolError(
            f"Pipedrive {where}: success=false in a {response.status_code} response: {api_messages(body)}"
        )
    return body
