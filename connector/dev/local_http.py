"""The local runner's HTTP surface: the function app's routes on aiohttp, with the host's rules.

Like Azure's FUNCTION auth level, the admin routes (replay, D365 events, detailed health) need a key, always:
there is no open mode. The key is compared as bytes in constant time, whatever a client sends (a non-ASCII
key is a 401, not an encoding error). A request aiohttp's parser refuses (a malformed header) is answered
with a fixed JSON 400 and logged by type only: aiohttp's own answer and log line quote the offending header
line, which can be an `Authorization` or key value.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from connector.functions.http import HttpIn, HttpOut, Route, guarded, json_error, json_response
from connector.runtime import Runtime

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024


def key_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of UTF-8 bytes; never raises, whatever `given` holds."""
    supplied = given.encode("utf-8", "surrogatepass")
    return bool(expected) and hmac.compare_digest(supplied, expected.encode("utf-8", "surrogatepass"))


def _admin_allowed(request: web.Request, admin_key: str) -> bool:
    headers = request.headers.getall("x-functions-key", [])
    codes = request.query.getall("code", [])
    given = headers + codes
    return len(given) == 1 and key_matches(given[0], admin_key)  # two keys are refused, not tried in turn


def _http_in(request: web.Request, body: bytes) -> HttpIn:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        # Repeated headers are joined with commas, as the Functions host does; handlers refuse them.
        key = name.title()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return HttpIn(method=request.method, url=str(request.url), body=body, headers=headers, params=dict(request.query))


def to_aiohttp(out: HttpOut) -> web.Response:
    return web.Response(status=out.status, body=out.body, headers=dict(out.headers))


def build_http_app(rt: Runtime, *, admin_key: str) -> web.Application:
    """aiohttp app with the function app's routes; admin routes need `admin_key` (like a function key)."""
    from connector.functions.admin import handle_replay
    from connector.functions.admin_ui import handle_admin_ui, handle_admin_ui_replay, handle_doctor
    from connector.functions.d365_events import handle_d365_events
    from connector.functions.traced import pipedrive_webhook as handle_pipedrive_webhook

    if not admin_key:
        raise ValueError("the admin routes need a key")

    def route(handler: Route, *, admin: bool) -> Any:
        async def serve(request: web.Request) -> web.Response:
            if admin and not _admin_allowed(request, admin_key):
                return to_aiohttp(json_error(401, "missing or wrong function key"))
            return to_aiohttp(await handler(_http_in(request, await request.read())))

        return serve

    async def health(request: web.Request) -> web.Response:
        from connector.functions.health import is_up

        up = await is_up()
        return to_aiohttp(json_response(200 if up else 503, {"status": "up" if up else "down"}))

    async def health_details(request: web.Request) -> web.Response:
        from connector.functions.health import health_report

        if not _admin_allowed(request, admin_key):
            return to_aiohttp(json_error(401, "missing or wrong function key"))
        report = await health_report(rt.settings)
        return to_aiohttp(json_response(report.http_status, report.model_dump()))

    app = web.Application(client_max_size=MAX_BODY, middlewares=[_json_errors])
    app.router.add_post("/api/pipedrive/webhook", route(handle_pipedrive_webhook, admin=False))
    app.router.add_post("/api/d365/events", route(handle_d365_events, admin=True))  # function key, as in Azure
    app.router.add_post("/api/admin/replay", route(handle_replay, admin=True))
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/health/details", health_details)
    app.router.add_get("/api/admin/doctor", route(guarded(handle_doctor), admin=True))
    app.router.add_get("/api/admin/ui", route(guarded(handle_admin_ui), admin=True))
    app.router.add_post("/api/admin/ui/replay", route(guarded(handle_admin_ui_replay), admin=True))
    return app


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own refusals (404, 405, 413 body too large) as JSON errors, like every route's."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        keep = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return to_aiohttp(json_error(exc.status, exc.reason, keep))
    return response


class _SafeRequestHandler(RequestHandler):
    """aiohttp's connection handler with an error answer that quotes nothing from the request."""

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("HTTP %s while serving a request: %s", status, type(exc).__name__ if exc else "no detail")
        else:
            log.warning("refused a malformed HTTP request (%s)", type(exc).__name__ if exc else status)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already under way; closing the connection")
        text = "malformed HTTP request" if status < 500 else "internal error"
        response = web.Response(status=status, text=json.dumps({"error": text}), content_type="application/json")
        response.force_close()
        return response


class _SafeServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _SafeRequestHandler(self, loop=self._loop, **self._kwargs)


class SafeAppRunner(web.AppRunner):
    """An AppRunner whose connections answer parse errors with `_SafeRequestHandler`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _SafeServer  # same state, our handler factory (aiohttp has no hook for it)
        return server
