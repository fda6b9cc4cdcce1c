"""The ONE table that turns a D365 F&O error response into a typed connector error.

F&O writes answer `{"error":{"code":"","message":"An error has occurred.","innererror":{"message":
"Write failed for table row of type '<Entity>'. Infolog: Warning: ...; Error: ...","type":"...AxODataWriteException"}}}`
with status 400 or 500 depending on version (docs/api-facts.md, D365 §5; UNCONFIRMED which). Any error whose
`innererror` names an exception type (AxODataWriteException, ODataArgumentException, ODataException,
...) was raised by F&O's own logic: it is permanent, whatever the status, and its message is the
reason. Only 429, 5xx without such a body (gateway pages, bare 503s) and network errors are
transient; the retry transport decides from the same table (connector.error_table). Messages never include
headers or request bodies, so tokens and secrets cannot leak through them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from connector.d365.batch import failed_part
from connector.error_table import ErrorTable, Failure, Row
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
from connector.pacing import server_wait

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
    """What we could read from an error answer, whatever its shape (the D365 table's reading)."""

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

    @property
    def lines(self) -> list[str]:
        return infolog_lines(self.inner_message) if self.inner_message else [describe(self)]


def read_error(response: httpx.Response) -> ErrorInfo:
    """Parse any error body without raising: OData JSON, empty, or an HTML/text gateway page."""
    body = response.content
    odata: _ErrorDetail | None = None
    text = ""
    try:
        odata = ODataErrorBody.model_validate(json.loads(body)).error if body.strip() else None
    except (ValueError, PydanticValidationError, RecursionError):
        text = _excerpt(body)
    return ErrorInfo(status=response.status_code, odata=odata, text=text, retry_after=server_wait(response))


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


def describe(info: ErrorInfo) -> str:
    return info.inner_message or info.text or f"HTTP {info.status}"


# --- the table ----------------------------------------------------------------------------------


def is_business_error(info: ErrorInfo) -> bool:
    """F&O's own logic refused the request (a typed innererror): permanent at any status."""
    return bool(info.inner_type)


def already_exists(info: ErrorInfo) -> bool:
    return DUPLICATE_MARKER in info.inner_message


def _throttled(info: ErrorInfo, what: str) -> str:
    return f"{what} throttled by D365" + (
        f"; retry after {info.retry_after:.0f}s" if info.retry_after is not None else ""
    )


def _refused(info: ErrorInfo, what: str) -> str:
    return f"{what} refused by D365: " + " ".join(info.lines)


def _not_found(info: ErrorInfo, what: str) -> str:
    return f"{what}: not found in D365" + (f": {info.inner_message}" if info.inner_type else "")


# 5xx without a typed body (gateway pages, bare 503s) and 408: the service, not the request, failed.
UNAVAILABLE = frozenset({408, *range(500, 600)})

D365_ERRORS = ErrorTable(
    read_error,
    [
        Row(RateLimitedError, _throttled, statuses={429}),
        Row(AuthError, lambda i, w: f"{w}: D365 refused the credentials", statuses={401, 403}),
        Row(DuplicateError, lambda i, w: f"{w}: {' '.join(infolog_lines(i.inner_message))}", marker=already_exists),
        Row(NotFoundError, _not_found, statuses={404}),
        Row(ValidationError, _refused, marker=is_business_error),
        Row(TransientError, lambda i, w: f"{w}: D365 unavailable ({i.status}): {describe(i)}", statuses=UNAVAILABLE),
        Row(ValidationError, _refused, statuses={400, 422}),
        Row(PermanentError, lambda i, w: f"{w}: conflict in D365: {describe(i)}", statuses={409, 412}),
    ],
    otherwise=Row(PermanentError, lambda i, w: f"{w}: unexpected D365 answer {i.status}: {describe(i)}"),
)


def classify(response: httpx.Response) -> Failure | None:
    """The failure in a D365 answer: an error status, or the failed part of a changeset answered 200
    (F&O committed none of that changeset, so it may be resent whatever the method)."""
    if response.status_code >= 400:
        return D365_ERRORS.classify(response)
    failed = failed_part(response)
    return None if failed is None else D365_ERRORS.classify(failed.as_response(), nothing_done=True)


def error_from_response(response: httpx.Response, what: str) -> ConnectorError:
    """The table's error for an error answer, whatever the method (tests and tools; clients use `classify`)."""
    return D365_ERRORS.classify(response).error(what)


def protocol_error(what: str, problem: str, status: int | None = None) -> ProtocolError:
    return ProtocolError(f"{what}: {problem}", status=status)
