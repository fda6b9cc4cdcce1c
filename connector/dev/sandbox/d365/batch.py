"""`POST /data/$batch`: multipart/mixed with atomic changesets (reference section 4).

A changeset commits all its operations or none; the outer answer is 200 even when a changeset fails,
and a failed changeset answers with one part carrying the error (a 429 from service protection or an
injected fault included, with its Retry-After). Operations outside changesets run independently.

A `$<Content-ID>` reference in a request URL (`$1/SalesOrderLines`) is refused (400, nothing of the
changeset is written). F&O's support for it is UNCONFIRMED and unlikely: its batch handler saves a
changeset's operations together at the end (reference section 4), so a number-sequence key does not
exist yet when `$1` would be resolved. The strict reading is the simulator's (docs/sandbox-d365.md).
"""

from __future__ import annotations

import http
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from connector.dev.sandbox.d365.odata_errors import WRITE_EXCEPTION, ODataError, bad_request
from connector.dev.sandbox.d365.service import JSON_TYPE, Request, Response

if TYPE_CHECKING:
    from connector.dev.sandbox.d365.server import D365Sandbox

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)


@dataclass
class Operation:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None


@dataclass
class Changeset:
    operations: list[Operation] = field(default_factory=list)


def _boundary(content_type: str) -> str:
    if not content_type.lower().startswith("multipart/mixed"):
        raise bad_request(
            f"The content type '{content_type}' is not valid for a batch request: multipart/mixed expected."
        )
    match = _BOUNDARY.search(content_type)
    if not match:
        raise bad_request("The batch request's Content-Type has no boundary parameter.")
    return match.group(1)


def _split_head(block: bytes) -> tuple[dict[str, str], bytes]:
    """Headers (case-insensitive keys) and the rest, after the first blank line."""
    match = re.search(rb"\r?\n\r?\n", block)
    head, rest = (block[: match.start()], block[match.end() :]) if match else (block, b"")
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n", head):
        if not line.strip():
            continue
        name, sep, value = line.decode("utf-8", "replace").partition(":")
        if not sep:
            raise bad_request(f"Malformed header line in batch part: '{name[:80]}'.")
        headers[name.strip().lower()] = value.strip()
    return headers, rest


def _parts(body: bytes, boundary: str) -> list[bytes]:
    delimiter = b"--" + boundary.encode()
    end = delimiter + b"--"
    if end not in body:
        raise bad_request(f"The batch request is truncated: the closing boundary '--{boundary}--' was not found.")
    body = body[: body.index(end)]
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise bad_request("The batch request has no parts.")
    return [re.sub(rb"\r?\n$", b"", re.sub(rb"^\r?\n", b"", c)) for c in chunks[1:]]


def _operation(part: bytes) -> Operation:
    headers, rest = _split_head(part)
    if not headers.get("content-type", "").lower().startswith("application/http"):
        raise bad_request("Each batch part must have Content-Type application/http or multipart/mixed.")
    line_match = re.match(rb"([^\r\n]*)\r?\n", rest + b"\n")
    assert line_match is not None
    request_line = line_match.group(1).decode("utf-8", "replace").split()
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/"):
        raise bad_request(f"Malformed request line in batch part: '{' '.join(request_line)[:120]}'.")
    after = rest[line_match.end() :]
    blank = re.match(rb"\r?\n", after)
    inner_headers: dict[str, str]
    if blank:  # no inner headers: the body follows the request line's blank line
        inner_headers, inner_body = {}, after[blank.end() :]
    else:
        inner_headers, inner_body = _split_head(after)
    # The Content-ID is a MIME header of the part (ODataLib reads it there), not a header of the inner request.
    return Operation(request_line[0].upper(), request_line[1], inner_headers, inner_body.rstrip(b"\r\n"),
                     headers.get("content-id"))  # fmt: skip


def parse_batch(content_type: str, body: bytes) -> list[Operation | Changeset]:
    items: list[Operation | Changeset] = []
    for part in _parts(body, _boundary(content_type)):
        headers, rest = _split_head(part)
        part_type = headers.get("content-type", "")
        if part_type.lower().startswith("multipart/mixed"):
            changeset = Changeset([_operation(p) for p in _parts(rest, _boundary(part_type))])
            _check_changeset(changeset)
            items.append(changeset)
        else:
            items.append(_operation(part))
    return items


def _check_changeset(changeset: Changeset) -> None:
    """ODataLib's reader rules for a changeset (OData/odata.net, `ODataBatchReader`): writes only, each with a
    Content-ID, unique within the changeset. It refuses the whole batch before running any of it."""
    seen: set[str] = set()
    for op in changeset.operations:
        if op.method not in ("POST", "PUT", "PATCH", "DELETE", "MERGE"):
            raise bad_request(
                f"An invalid HTTP method '{op.method}' was detected for a request in a change set. Requests in "
                "change sets only support the HTTP methods 'POST', 'PUT', 'DELETE', and 'PATCH'."
            )
        if not op.content_id:
            raise bad_request(
                "The header with name 'Content-ID' was not present in the header collection of the batch operation."
            )
        if op.content_id in seen:
            raise bad_request(
                f"The content ID '{op.content_id}' was found more than once in the same change set. Content IDs "
                "have to be unique across all operations of a change set."
            )
        seen.add(op.content_id)


def content_id_refused(url: str, content_id: str) -> ODataError:
    return bad_request(
        f"The request URI '{url[:200]}' refers to Content-ID '{content_id}'. Content-ID references are not "
        "supported: the operations of a changeset are saved together when it ends, so the referenced entity "
        "has no key yet. Address the entity by its key (e.g. give each line its order's SalesOrderNumber)."
    )


def _data_path(url: str, base_url: str) -> tuple[str, dict[str, str]]:
    """`https://host/data/X?q`, `/data/X` or `X` -> (path after /data/, query); `$1/...` is refused, and so
    is an absolute URL outside this service (ODataLib resolves each operation against the service root)."""
    ref = re.match(r"^\$(\w+)", url)
    if ref:
        raise content_id_refused(url, ref.group(1))
    parts = urlsplit(url)
    root = f"{base_url}/data/"
    if parts.scheme and not url.lower().startswith(root.lower()):
        raise bad_request(f"The URI '{url[:200]}' is not valid because it is not based on '{root}'.")
    path = parts.path
    if "/data/" in path:
        path = path.split("/data/", 1)[1]
    return path.lstrip("/"), dict(parse_qsl(parts.query, keep_blank_values=True))


async def _run(sandbox: D365Sandbox, op: Operation, *, atomic: bool = False) -> Response:
    fault = sandbox.faults.take(op.method, op.url, "batch_part")
    if fault and fault.latency:
        await sandbox.pause(fault.latency)  # injected server-side latency
    if fault and fault.status:
        from connector.dev.sandbox.d365.app import fault_response

        response = fault_response(fault)
    else:
        refused: Response | None = None
        try:
            path, query = _data_path(op.url, sandbox.service.base_url)
        except ODataError as exc:
            refused = response = sandbox.service.error(exc)
        if refused is None:
            request = Request(op.method, path, query, op.body, op.headers)
            if atomic:
                from connector.dev.sandbox.d365.app import handle_atomic

                response = await handle_atomic(sandbox, request)
            else:
                response = sandbox.service.handle(request)
    sandbox.log.add(op.method, op.url, {}, response.status, in_batch=True, body=_json_or_none(op.body))
    return response


def _json_or_none(body: bytes) -> object:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body[:2000].decode("utf-8", "replace")


def _is_write_error(response: Response) -> bool:
    body = response.body
    return isinstance(body, dict) and body.get("error", {}).get("innererror", {}).get("type") == WRITE_EXCEPTION


def _format_part(response: Response, content_id: str | None) -> bytes:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    phrase = http.HTTPStatus(response.status).phrase
    inner = [f"HTTP/1.1 {response.status} {phrase}"]
    headers = {"OData-Version": "4.0", **response.headers}
    body = b""
    if isinstance(response.body, dict):
        body = json.dumps(response.body).encode()
    elif isinstance(response.body, str):
        body = response.body.encode()
    elif isinstance(response.body, bytes):
        body = response.body
    inner += [f"{k}: {v}" for k, v in headers.items()]
    head = "\r\n".join(lines) + "\r\n\r\n" + "\r\n".join(inner) + "\r\n\r\n"
    return head.encode() + body + b"\r\n"


async def handle_batch(sandbox: D365Sandbox, content_type: str, body: bytes) -> Response:
    try:
        items = parse_batch(content_type, body)
    except ODataError as exc:
        return sandbox.service.error(exc)
    outer = f"batchresponse_{uuid.uuid4()}"
    out = b""
    for item in items:
        out += f"--{outer}\r\n".encode()
        if isinstance(item, Operation):
            out += _format_part(await _run(sandbox, item, atomic=True), item.content_id)
            continue
        out += await _run_changeset(sandbox, item)
    out += f"--{outer}--\r\n".encode()
    return Response(200, out, {"Content-Type": f"multipart/mixed; boundary={outer}"})


async def _run_changeset(sandbox: D365Sandbox, changeset: Changeset) -> bytes:
    async with sandbox.store.write_lock:
        return await _run_changeset_locked(sandbox, changeset)


async def _run_changeset_locked(sandbox: D365Sandbox, changeset: Changeset) -> bytes:
    results: list[tuple[Response, str | None]] = []
    sandbox.store.begin()
    try:
        for op in changeset.operations:
            response = await _run(sandbox, op)
            if response.status >= 400:
                sandbox.store.rollback()
                if _is_write_error(response) and sandbox.batch_write_error_status:
                    response.status = sandbox.batch_write_error_status
                return _format_part(response, op.content_id)
            results.append((response, op.content_id))
    except BaseException:
        sandbox.store.rollback()
        raise
    sandbox.store.commit()
    inner = f"changesetresponse_{uuid.uuid4()}"
    out = f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode()
    for response, content_id in results:
        out += f"--{inner}\r\n".encode() + _format_part(response, content_id)
    return out + f"--{inner}--\r\n".encode()


__all__ = ["JSON_TYPE", "handle_batch", "parse_batch"]
