"""aiohttp routes: Entra-like token endpoints, `/data/` (bearer check, limits, faults, log), `/_sandbox/`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from connector.dev.sandbox.d365 import control
from connector.dev.sandbox.d365.batch import handle_batch
from connector.dev.sandbox.d365.faults import Fault, gateway_html
from connector.dev.sandbox.d365.odata_errors import ODataError, throttled
from connector.dev.sandbox.d365.service import JSON_TYPE, Request, Response, url_too_long
from connector.dev.sandbox.d365.tokens import TokenError

if TYPE_CHECKING:
    from connector.dev.sandbox.d365.server import D365Sandbox


SANDBOX: web.AppKey[D365Sandbox] = web.AppKey("sandbox")


def build_app(sandbox: D365Sandbox) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SANDBOX] = sandbox
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_get("/{tenant}/.well-known/openid-configuration", openid_configuration)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token_v2)
    app.router.add_post("/{tenant}/oauth2/token", token_v1)
    app.router.add_route("*", "/data/$batch", batch)
    app.router.add_route("*", "/data", data)
    app.router.add_route("*", "/data/{path:.*}", data)
    control.add_routes(app)
    return app


def _sandbox(request: web.Request) -> D365Sandbox:
    return request.app[SANDBOX]


async def openid_configuration(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    tenant = request.match_info["tenant"]
    base = f"{sandbox.authority}/{tenant}"
    return web.json_response(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": "NA",
        }
    )


def _aad_error(status: int, error: str, code: str, text: str) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": f"{code}: {text}", "error_codes": [int(code[6:])]}, status=status
    )


async def _token(request: web.Request, *, version: int) -> web.Response:
    sandbox = _sandbox(request)
    issuer = sandbox.issuer
    form = dict(parse_qsl((await request.read()).decode("utf-8", "replace")))
    sandbox.log.add("POST", request.path, {}, 0)  # body holds the secret: never logged
    entry = sandbox.log.entries[-1]
    if request.match_info["tenant"] not in (issuer.tenant_id, "organizations"):
        entry.status = 400
        return _aad_error(400, "invalid_request", "AADSTS90002", f"Tenant '{request.match_info['tenant']}' not found.")
    if form.get("grant_type") != "client_credentials":
        entry.status = 400
        return _aad_error(400, "unsupported_grant_type", "AADSTS70003", "The app requested an unsupported grant type.")
    if form.get("client_id") != issuer.client_id:
        entry.status = 400
        return _aad_error(400, "unauthorized_client", "AADSTS700016", "Application not found in the directory.")
    if form.get("client_secret") != issuer.client_secret:
        entry.status = 401
        return _aad_error(401, "invalid_client", "AADSTS7000215", "Invalid client secret provided.")
    if version == 2:
        scope = form.get("scope", "")
        resources = [s[: -len("/.default")] for s in scope.split() if s.endswith("/.default")]
        if len(resources) != 1:
            entry.status = 400
            return _aad_error(400, "invalid_scope", "AADSTS1002012", "The provided value for scope is not valid.")
        audience = resources[0]
    else:
        audience = form.get("resource", "")
        if not audience:
            entry.status = 400
            return _aad_error(400, "invalid_request", "AADSTS900144", "The request body must contain 'resource'.")
    token, lifetime = issuer.issue(audience)
    entry.status = 200
    body: dict[str, Any] = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                            "access_token": token}  # fmt: skip
    if version == 1:
        body["resource"] = audience
    return web.json_response(body)


async def token_v2(request: web.Request) -> web.Response:
    return await _token(request, version=2)


async def token_v1(request: web.Request) -> web.Response:
    return await _token(request, version=1)


def to_web(response: Response) -> web.Response:
    headers = {"OData-Version": "4.0", **response.headers}
    if isinstance(response.body, dict):
        return web.Response(status=response.status, text=json.dumps(response.body), headers=headers)
    if response.body is None:
        headers.pop("Content-Type", None)
        return web.Response(status=response.status, headers=headers)
    return web.Response(status=response.status, body=response.body, headers=headers)


def fault_response(fault: Fault) -> Response:
    status = fault.status or 500
    if fault.html:
        return Response(status, gateway_html(status).encode(), {"Content-Type": "text/html"})
    if status == 429:
        error = throttled(fault.message or "Number of requests exceeded the limit.", fault.retry_after or 0)
        if fault.retry_after is None:
            error.headers.pop("Retry-After")
    else:
        error = ODataError(status, fault.message or "An error has occurred.")
        if fault.retry_after is not None:
            error.headers["Retry-After"] = str(fault.retry_after)
    return Response(error.status, error.body(), {"Content-Type": JSON_TYPE, **error.headers})


async def authorize(request: web.Request) -> Response | str:
    """Bearer check as F&O does it; returns the caller's client id or a 401."""
    sandbox = _sandbox(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return Response(401, None, {"WWW-Authenticate": 'Bearer error="invalid_request"'})
    try:
        claims = sandbox.issuer.check(token.strip(), audience=sandbox.base_url.lower())
    except TokenError as exc:
        return Response(401, None, {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc}"'})
    return str(claims["appid"])


async def pre_checks(request: web.Request, fault: Fault | None) -> Response | None:
    """Faults, auth and service protection, in the order a real request meets them."""
    sandbox = _sandbox(request)
    if fault and fault.latency:
        await sandbox.pause(fault.latency)  # injected server-side latency, part of the simulated behaviour
    if fault and fault.status:
        return fault_response(fault)
    client = await authorize(request)
    if isinstance(client, Response):
        return client
    wait = sandbox.limiter.check(client)
    if wait is not None:
        error = throttled(sandbox.limiter.message(), wait)
        return Response(429, error.body(), {"Content-Type": JSON_TYPE, **error.headers})
    return None


async def serve(
    request: web.Request,
    process: Callable[[], Awaitable[Response]],
    *,
    log_body: Any = None,
    refused: Response | None = None,
) -> web.StreamResponse:
    """One `/data/` request: faults and checks, then `process` (the write commits there), then the answer.

    `refused` is an answer the web server gives before anything else (e.g. a URL too long). A lost-answer
    fault (`after_commit`, `commit_delay`) lets the request be processed as usual and only then takes
    the answer away, as a gateway or a broken connection does after F&O committed.
    """
    sandbox = _sandbox(request)
    fault = None if refused else sandbox.faults.take(request.method, request.path)
    response = refused or await pre_checks(request, fault)
    if response is None:
        if fault and fault.commit_delay:
            response = await sandbox.later(fault.commit_delay, process)
        else:
            response = await process()
    lost = fault.kind if fault and (fault.after_commit or fault.commit_delay) else None
    sandbox.log.add(request.method, request.path, dict(request.query), response.status, body=log_body, lost=lost)
    if fault and fault.after_commit:
        return await lose_answer(request, fault, response)
    return to_web(response)


async def lose_answer(request: web.Request, fault: Fault, response: Response) -> web.StreamResponse:
    if fault.after_commit == "stall":
        await _sandbox(request).pause(fault.stall)  # the client has timed out by now (or stops waiting)
        return to_web(response)
    if fault.after_commit == "reset":
        if request.transport is not None:
            request.transport.abort()  # no answer at all: the client sees the connection drop
        return web.Response(status=500)  # written to nothing
    if fault.after_commit == "truncated":
        whole = to_web(response)
        body = bytes(whole.body) if isinstance(whole.body, bytes | bytearray) else b""
        headers = {k: v for k, v in whole.headers.items() if k.lower() != "content-length"}
        return web.Response(status=whole.status, body=body[: len(body) // 2], headers=headers)
    status = int(fault.after_commit or 502)
    return web.Response(status=status, text=gateway_html(status), content_type="text/html")


async def data(request: web.Request) -> web.StreamResponse:
    sandbox = _sandbox(request)
    path = request.rel_url.raw_path.partition("/data/")[2]  # as sent: the service decodes it like F&O's host
    query = dict(request.query)
    body = await request.read()
    headers = dict(request.headers)

    async def process() -> Response:
        return await handle_atomic(sandbox, Request(request.method, path, query, body, headers))

    too_long = url_too_long(sandbox.base_url + request.raw_path)
    return await serve(request, process, log_body=_loggable(body), refused=too_long)


async def batch(request: web.Request) -> web.StreamResponse:
    sandbox = _sandbox(request)
    body = await request.read()
    content_type = request.headers.get("Content-Type", "")

    async def process() -> Response:
        if request.method != "POST":
            return ODataServiceError405()
        return await handle_batch(sandbox, content_type, body)

    return await serve(request, process)


async def handle_atomic(sandbox: D365Sandbox, request: Request) -> Response:
    """A write outside a changeset is its own transaction: it commits whole or leaves nothing."""
    if request.method.upper() == "GET":
        return sandbox.service.handle(request)
    async with sandbox.store.write_lock:
        sandbox.store.begin()
        try:
            response = sandbox.service.handle(request)
        except BaseException:
            sandbox.store.rollback()
            raise
        if response.status < 400:
            sandbox.store.commit()
        else:
            sandbox.store.rollback()
        return response


def ODataServiceError405() -> Response:
    error = ODataError(405, "The HTTP method is not allowed on $batch; use POST.")
    return Response(405, error.body(), {"Content-Type": JSON_TYPE})


def _loggable(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body[:2000].decode("utf-8", "replace")
