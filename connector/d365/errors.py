"""The ONE table that turns a D365 F&O error response into a typed connector error.

F&O writes answer `{"error":{"code":"","message":"An error has occurred.","innererror":{"message":
"Write failed for table row of type '<Entity>'. Infolog: Warning: ...; Error: ...","type":"...AxODataWriteException"}}}`
with status 400 or 500 depending on version (reference §5, UNCONFIRMED which). Any error whose
`innererror` names an exception type (AxODataWriteException, ODataArgumentException, ODataException,
...) was raised by F&O's own logic: it is permanent, whatever the status, and its message is the
reason. Only 429, 5xx without such a body (gateway pages, bare 503s) and network errors are
transient; the retry predicates below are derived from the same table. Messages never include
headers or request bodies, so tokens and secrets cannot leak through them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from connector.errors import (
    AuthError,
    ConnectorError,
    DuplicateError,
    NotFoundError,
    PermanentError,
    ProtocolError,
    RateLimitedError,
    TransientError,
    ValidationError,
)
from connector.retry import server_wait

DUPLICATE_MARKER = "The record already exists"
_INFOLOG_SPLIT = re.compile(r";\s*(?=(?:Info|Warning|Error):)")
_LEVEL = re.compile(r"^(?:Info|Warning|Error):\s*")
_MAX_TEXT = 500


class _InnerError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = ""
    type: str = ""


class _ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str = ""
    message: str = ""
    innererror: _InnerError | None = None


class ODataErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    error: _ErrorDetail


@dataclass(frozen=True)
class ErrorInfo:
    """What we could read from an error response, whatever its shape."""

    status: int
    odata: _ErrorDetail | None
    text: str  # short, printable excerpt of a non-OData body (HTML gateway page)
    retry_after: float | None

    @property
    def inner_message(self) -> str:
        if self.odata is None:
            return ""
        inner = self.odata.innererror.message if self.odata.innererror else ""
        return inner or self.odata.message

    @property
    def inner_type(self) -> str:
        """The .NET exception type F&O named in `innererror` ("" when there is none)."""
        return self.odata.innererror.type.strip() if self.odata and self.odata.innererror else ""


def read_error(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """Parse any error body without raising: OData JSON, empty, or an HTML/text gateway page."""
    odata: _ErrorDetail | None = None
    text = ""
    try:
        odata = ODataErrorBody.model_validate(json.loads(body)).error if body.strip() else None
    except (ValueError, PydanticValidationError):
        text = _excerpt(body)
    response = httpx.Response(status, headers=dict(headers))
    return ErrorInfo(status=status, odata=odata, text=text, retry_after=server_wait(response))


def _excerpt(body: bytes) -> str:
    raw = body.decode("utf-8", "replace")
    title = re.search(r"<title>(.*?)</title>", raw, re.IGNORECASE | re.DOTALL)
    plain = title.group(1) if title else re.sub(r"<[^>]+>", " ", raw)
    return " ".join(plain.split())[:_MAX_TEXT]


def infolog_lines(message: str) -> list[str]:
    """`Write failed ... Infolog: Warning: A.; Warning: B.` -> ["A.", "B."] (readable reasons)."""
    _, sep, infolog = message.partition("Infolog:")
    body = infolog if sep else message
    lines = []
    for chunk in _INFOLOG_SPLIT.split(body.strip()):
        for piece in chunk.splitlines():
            line = _LEVEL.sub("", piece.strip())
            line = re.sub(r"\.\.$", ".", line)
            if line:
                lines.append(line)
    return lines


def is_business_error(info: ErrorInfo) -> bool:
    """F&O's own logic refused the request (a typed innererror): permanent at any status."""
    return bool(info.inner_type)


def is_transient(info: ErrorInfo) -> bool:
    return isinstance(map_error(info, ""), TransientError)


def _method(response: httpx.Response) -> str:
    try:
        return response.request.method
    except RuntimeError:  # a response built without its request
        return ""


def d365_retryable(response: httpx.Response) -> bool:
    """Retry classifier for connector.retry.RetryTransport (body is already read there).

    Only what the error table calls transient is resent. 429 and a bare 503 mean "not processed"
    ([RETRY]): always safe to resend. A POST that met another 5xx may have been committed behind
    the gateway, and resending could create a second record, so it goes back to the caller as
    TransientError; the flow looks the record up before retrying.
    """
    status = response.status_code
    if status < 500 and status not in (408, 429):
        return False
    if not is_transient(read_error(status, response.headers, response.content)):
        return False
    return status in (429, 503) or _method(response) != "POST"


def d365_retryable_error(request: httpx.Request, exc: Exception) -> bool:
    """Transport errors: resend unless a POST may have reached the server (only connect failures are safe)."""
    return request.method != "POST" or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


# --- the table ----------------------------------------------------------------------------------

Rule = tuple[Callable[[ErrorInfo], bool], Callable[[ErrorInfo, str], ConnectorError]]


def _describe(info: ErrorInfo) -> str:
    return info.inner_message or info.text or f"HTTP {info.status}"


def _validation(info: ErrorInfo, what: str) -> ConnectorError:
    lines = infolog_lines(info.inner_message) if info.inner_message else [_describe(info)]
    return ValidationError(f"{what} refused by D365: " + " ".join(lines), lines=lines, status=info.status)


RULES: list[Rule] = [
    (
        lambda i: i.status == 429,
        lambda i, w: RateLimitedError(
            f"{w} throttled by D365" + (f"; retry after {i.retry_after:.0f}s" if i.retry_after is not None else ""),
            retry_after=i.retry_after,
        ),
    ),
    (lambda i: i.status in (401, 403), lambda i, w: AuthError(f"{w}: D365 refused the credentials", status=i.status)),
    (
        lambda i: DUPLICATE_MARKER in i.inner_message,
        lambda i, w: DuplicateError(f"{w}: {' '.join(infolog_lines(i.inner_message))}", status=i.status),
    ),
    (
        lambda i: i.status == 404,
        lambda i, w: NotFoundError(
            f"{w}: not found in D365" + (f": {i.inner_message}" if i.inner_type else ""), status=i.status
        ),
    ),
    (is_business_error, _validation),
    (
        lambda i: i.status >= 500 or i.status == 408,
        lambda i, w: TransientError(f"{w}: D365 unavailable ({i.status}): {_describe(i)}", status=i.status),
    ),
    (lambda i: i.status == 400 or i.status == 422, _validation),
    (
        lambda i: i.status == 409 or i.status == 412,
        lambda i, w: PermanentError(f"{w}: conflict in D365: {_describe(i)}", status=i.status),
    ),
]


def map_error(info: ErrorInfo, what: str) -> ConnectorError:
    """First matching rule wins; `what` names the operation (e.g. `POST CustomersV3`)."""
    for matches, build in RULES:
        if matches(info):
            return build(info, what)
    return PermanentError(f"{what}: unexpected D365 answer {info.status}: {_describe(info)}", status=info.status)


def error_from_response(response: httpx.Response, what: str) -> ConnectorError:
    return map_error(read_error(response.status_code, response.headers, response.content), what)


def protocol_error(what: str, problem: str, status: int | None = None) -> ProtocolError:
    return ProtocolError(f"{what}: {problem}", status=status)
