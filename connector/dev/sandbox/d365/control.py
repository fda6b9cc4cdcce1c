"""`/_sandbox/` control API (documented in docs/sandbox-d365.md); loopback only, no auth."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pydantic
from aiohttp import web

if TYPE_CHECKING:
    from connector.dev.sandbox.d365.server import D365Sandbox


def add_routes(app: web.Application) -> None:
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_post("/_sandbox/seed", seed)
    app.router.add_post("/_sandbox/faults", add_fault)
    app.router.add_delete("/_sandbox/faults", clear_faults)
    app.router.add_get("/_sandbox/faults", list_faults)
    app.router.add_post("/_sandbox/commits/release", release_commits)
    app.router.add_put("/_sandbox/number-sequences", number_sequences)
    app.router.add_put("/_sandbox/limits", set_limits)
    app.router.add_get("/_sandbox/requests", requests)
    app.router.add_delete("/_sandbox/requests", clear_requests)
    app.router.add_get("/_sandbox/sales-orders", sales_orders)
    app.router.add_put("/_sandbox/events/endpoint", event_endpoint)
    app.router.add_get("/_sandbox/events", events)
    app.router.add_post("/_sandbox/tokens/expire", expire_tokens)
    app.router.add_get("/_sandbox/info", info)


def _sb(request: web.Request) -> D365Sandbox:
    from connector.dev.sandbox.d365.app import SANDBOX

    return request.app[SANDBOX]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"invalid JSON: {exc}"}), content_type="application/json"
        ) from exc


async def _guard(request: web.Request, action: Any) -> web.Response:
    from connector.dev.sandbox.d365.server import SeedError

    try:
        result = action(await _body(request))
    except (pydantic.ValidationError, SeedError, TypeError) as exc:
        return _error(400, str(exc))
    if hasattr(result, "__await__"):
        result = await result
    return web.json_response(result if result is not None else {"ok": True})


async def reset(request: web.Request) -> web.Response:
    return await _guard(request, lambda body: _sb(request).reset(body))


async def seed(request: web.Request) -> web.Response:
    return await _guard(request, lambda body: _sb(request).seed(body or {}))


async def add_fault(request: web.Request) -> web.Response:
    return await _guard(request, lambda body: _sb(request).inject_fault(**(body or {})).model_dump())


async def clear_faults(request: web.Request) -> web.Response:
    _sb(request).faults.clear()
    return web.json_response({"ok": True})


async def list_faults(request: web.Request) -> web.Response:
    sandbox = _sb(request)
    return web.json_response(
        {
            "pending": [fault.model_dump() for fault in sandbox.faults.faults],
            "fired": dict(sandbox.faults.fired),
            "pending_commits": sandbox.pending_commits,
        }
    )


async def release_commits(request: web.Request) -> web.Response:
    return web.json_response({"released": await _sb(request).release_late_commits()})


async def number_sequences(request: web.Request) -> web.Response:
    def apply(body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("manual_sales_order_numbers"), bool):
            raise TypeError('body must be {"manual_sales_order_numbers": true|false}')
        _sb(request).set_number_sequences(manual_sales_order_numbers=body["manual_sales_order_numbers"])

    return await _guard(request, apply)


async def set_limits(request: web.Request) -> web.Response:
    return await _guard(request, lambda body: _sb(request).set_limits(**(body or {})))


async def requests(request: web.Request) -> web.Response:
    return web.json_response([entry.model_dump() for entry in _sb(request).requests()])


async def clear_requests(request: web.Request) -> web.Response:
    _sb(request).log.entries.clear()
    return web.json_response({"ok": True})


async def sales_orders(request: web.Request) -> web.Response:
    return web.json_response(_sb(request).sales_orders(request.query.get("company")))


async def event_endpoint(request: web.Request) -> web.Response:
    def activate(body: Any) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("url"), str | None):
            raise TypeError('body must be {"url": "https://..."} or {"url": null}')
        return _sb(request).set_event_endpoint(body.get("url"), legal_entity=str(body.get("legal_entity", "")))

    return await _guard(request, activate)


async def events(request: web.Request) -> web.Response:
    return web.json_response([d.model_dump() for d in _sb(request).events.deliveries])


async def expire_tokens(request: web.Request) -> web.Response:
    _sb(request).expire_tokens()
    return web.json_response({"ok": True})


async def info(request: web.Request) -> web.Response:
    sandbox = _sb(request)
    return web.json_response(
        {
            "base_url": sandbox.base_url,
            "authority": sandbox.authority,
            "tenant_id": sandbox.tenant_id,
            "client_id": sandbox.client_id,
            "ca_cert_path": sandbox.ca_cert_path,
            "default_company": sandbox.store.default_company,
            "dimension_format": sandbox.dimension_format.model_dump(),
        }
    )
