"""OData `$batch` for F&O: build one atomic changeset, parse the multipart/mixed answer.

Request shape follows the real captures (docs/api-facts.md, D365 §4: [RUBLOG], [D365FOINT]): an outer
`multipart/mixed` batch holding one changeset; each part is `application/http` with
`Content-Transfer-Encoding: binary`, a `Content-ID`, and an inner request line with the absolute
URL. The outer answer is 200 even when the changeset fails; a failed changeset answers with a
single error part (500/400/429), and nothing of it was committed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from connector.errors import ProtocolError

CRLF = "\r\n"
INNER_HEADERS = {
    "OData-Version": "4.0",
    "OData-MaxVersion": "4.0",
    "Accept": "application/json;odata.metadata=minimal",
}
JSON_TYPE = "application/json;odata.metadata=minimal;charset=UTF-8"


class Operation(BaseModel):
    """One request inside a changeset. `path` is relative to `/data/` or a `$n` Content-ID reference."""

    model_config = ConfigDict(frozen=True)

    method: Literal["POST", "PATCH", "PUT", "DELETE"]
    path: str = Field(min_length=1)
    body: dict[str, Any] | None = None


class BatchPart(BaseModel):
    """One response inside the batch answer."""

    status: int
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None

    def as_response(self) -> httpx.Response:
        """The part as an HTTP answer of its own (to read it with the same error table as any answer)."""
        return httpx.Response(self.status, headers=self.headers, content=self.body)

    def json(self) -> dict[str, Any]:  # type: ignore[override]
        """The part's JSON object; {} for an empty body (204)."""
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            raise ProtocolError(f"$batch part {self.status} is not JSON", status=self.status) from None
        if not isinstance(data, dict):
            raise ProtocolError("$batch part JSON is not an object", status=self.status)
        return data


def build_changeset(
    data_url: str, operations: Sequence[Operation], *, boundary: str | None = None
) -> tuple[str, bytes]:
    """(Content-Type header, body) for a `$batch` with all `operations` in one changeset."""
    if not operations:
        raise ValueError("a changeset needs at least one operation")
    batch = boundary or f"batch_{uuid.uuid4()}"
    changeset = f"changeset_{uuid.uuid4()}"
    base = data_url.rstrip("/") + "/"
    lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
    for index, op in enumerate(operations, start=1):
        target = op.path if op.path.startswith("$") else base + op.path
        lines += [
            f"--{changeset}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {index}",
            "",
            f"{op.method} {target} HTTP/1.1",
        ]
        lines += [f"{k}: {v}" for k, v in INNER_HEADERS.items()]
        if op.body is not None:
            lines += [f"Content-Type: {JSON_TYPE}", "", json.dumps(op.body, separators=(",", ":"))]
        else:
            lines += [""]
    lines += [f"--{changeset}--", f"--{batch}--", ""]
    return f"multipart/mixed; boundary={batch}", CRLF.join(lines).encode("utf-8")


# --- parsing ------------------------------------------------------------------------------------

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_STATUS_LINE = re.compile(r"^HTTP/\d\.\d\s+(\d{3})(?:\s.*)?$")


def _boundary(content_type: str) -> str:
    if not content_type.lower().startswith("multipart/"):
        raise ProtocolError(f"$batch answer is not multipart ({content_type.split(';')[0] or 'no content type'})")
    match = _BOUNDARY.search(content_type)
    if not match:
        raise ProtocolError("$batch answer has no multipart boundary")
    return match.group(1)


def _split_head(blob: bytes) -> tuple[dict[str, str], bytes]:
    """Headers up to the first blank line (CRLF or LF), then the rest."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, rest = blob.partition(sep)
        if found:
            break
    else:
        head, rest = blob, b""
        if blob.strip():
            raise ProtocolError("$batch part has no blank line after its headers (truncated?)")
    headers: dict[str, str] = {}
    for raw in head.decode("utf-8", "replace").splitlines():
        if not raw.strip():
            continue
        name, colon, value = raw.partition(":")
        if not colon:
            headers.setdefault("_first", raw.strip())
            continue
        headers[name.strip().lower()] = value.strip()
    return headers, rest


def _parts(body: bytes, boundary: str) -> list[bytes]:
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise ProtocolError("$batch answer does not contain its boundary")
    closing = chunks[-1]
    if not closing.startswith(b"--"):
        raise ProtocolError("$batch answer is truncated: closing boundary missing")
    parts = []
    for chunk in chunks[1:-1]:
        # Strip the CRLF that ends the delimiter line and the one that precedes the next delimiter.
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        elif chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        parts.append(chunk)
    return parts


def _http_response(blob: bytes, content_id: str | None) -> BatchPart:
    text_head, _, _ = blob.partition(b"\n")
    status_line = text_head.decode("utf-8", "replace").strip()
    match = _STATUS_LINE.match(status_line)
    if not match:
        raise ProtocolError(f"$batch part has no HTTP status line: {status_line[:60]!r}")
    headers, body = _split_head(blob[len(text_head) + 1 :])
    headers.pop("_first", None)
    return BatchPart(status=int(match.group(1)), headers=headers, body=body, content_id=content_id)


def parse_batch_response(content_type: str, body: bytes) -> list[BatchPart]:
    """Flatten a batch answer (changesets included) into its HTTP responses, in order."""
    out: list[BatchPart] = []
    for part in _parts(body, _boundary(content_type)):
        headers, rest = _split_head(part)
        ctype = headers.get("content-type", "")
        if ctype.lower().startswith("multipart/"):
            out.extend(parse_batch_response(ctype, rest))
        elif ctype.lower().startswith("application/http"):
            out.append(_http_response(rest, headers.get("content-id")))
        else:
            raise ProtocolError(f"$batch part has unexpected content type {ctype or 'none'!r}")
    return out


_PARTS = "connector.d365.batch_parts"


def batch_parts(response: httpx.Response) -> list[BatchPart]:
    """The parts of a `$batch` answer, parsed once (the transport looks for a failed part, the client
    then reads the results from the same parse)."""
    extensions: dict[str, Any] = response.extensions
    if _PARTS not in extensions:
        extensions[_PARTS] = parse_batch_response(response.headers.get("content-type", ""), response.content)
    parts: list[BatchPart] = extensions[_PARTS]
    return parts


def failed_part(response: httpx.Response) -> BatchPart | None:
    """The error part of a changeset answer; None for any other answer, or one this module cannot read
    (the client reports that when it reads the results)."""
    if not response.headers.get("content-type", "").lower().startswith("multipart/"):
        return None
    try:
        parts = batch_parts(response)
    except ProtocolError:
        return None
    return next((p for p in parts if p.status >= 400), None)
