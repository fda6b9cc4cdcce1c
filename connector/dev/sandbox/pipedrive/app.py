"""The aiohttp application: one middleware applies, in Pipedrive's order, faults -> auth -> scope ->
rate limit -> handler, adds the rate-limit headers and writes the request log."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import control, routes_fields, routes_v1, routes_v2
from .auth import TokenStore
from .context import INITIAL_SEED, SIM, Sim
from .envelope import ApiError, error_body
from .faults import Faults
from .models import FaultSpec, Seed
from .query_params import check_query
from .ratelimit import RateLimiter, RateLimits, token_cost
from .store import Store
from .webhooks import Dispatcher

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SEARCH_ROUTES = ("/api/v2/products/search", "/api/v2/organizations/search", "/api/v2/persons/search")


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


SECRET_WORDS = ("password", "secret", "token")


def redact(value: Any) -> Any:
    """The request log keeps bodies for assertions, but never credentials (webhook passwords, tokens)."""
    if isinstance(value, dict):
        return {k: "***" if any(w in str(k).lower() for w in SECRET_WORDS) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


async def _logged_body(request: web.Request) -> Any:
    if request.method in ("GET", "HEAD", "DELETE") or not request.can_read_body:
        return None
    if request.path.startswith("/oauth/"):
        return "***"  # form bodies with client secrets, codes and refresh tokens
    raw = await request.read()
    try:
        return redact(json.loads(raw))
    except ValueError:
        return raw.decode(errors="replace")[:2000]


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_sandbox/"):
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()
    s: Sim = request.app[SIM]
    entry: dict[str, Any] = {
        "time": time.time(), "method": request.method, "path": request.path, "query": redact(dict(request.query)),
        "route": _route(request), "auth": None, "cost": 0, "body": await _logged_body(request),
    }  # fmt: skip
    s.log.append(entry)
    rate_headers: dict[str, str] = {}
    fault: FaultSpec | None = None
    try:
        fault = s.faults.take(request.method, request.path)
        if fault is not None:
            if fault.latency:
                await asyncio.sleep(fault.latency)  # injected server latency
            if fault.status is not None and not fault.after:
                return _faulted(entry, fault, fault.status)
        if request.path.startswith("/oauth/"):  # the OAuth server authenticates clients itself
            response = await handler(request)
        else:
            principal = s.tokens.authenticate(request)
            entry["auth"] = principal.kind
            if request.match_info.http_exception is None:  # unknown path or method: its 404/405 answers
                s.tokens.require_scope(principal, request.method, entry["route"])
                cost = token_cost(request.method, entry["route"])
                entry["cost"] = cost
                search = entry["route"] in SEARCH_ROUTES
                rate_headers = s.limiter.check(principal.key, principal.kind, cost, search=search)
                check_query(request.method, entry["route"], request.query.keys())  # a refused call still costs
            response = await handler(request)
    except ApiError as exc:
        rate_headers = {**rate_headers, **exc.headers}
        response = exc.response()
    except web.HTTPRedirection as exc:
        entry["status"] = exc.status
        raise
    except web.HTTPException as exc:  # unknown path / method: Pipedrive's envelope, not aiohttp's text
        response = web.json_response(error_body(exc.reason), status=exc.status)
    except Exception:  # a simulator bug: answer like the service does (JSON 500) and say so in the log
        log.exception("pipedrive simulator failed on %s %s", request.method, request.path)
        response = web.json_response(error_body("Internal server error"), status=500)
    response.headers.update(rate_headers)
    if fault is not None and fault.after and fault.status is not None:
        return _faulted(entry, fault, fault.status)  # the request was served (a write saved); only its answer is lost
    entry["status"] = response.status
    return response


def _faulted(entry: dict[str, Any], fault: FaultSpec, status: int) -> web.StreamResponse:
    body = fault.body if fault.body is not None else error_body(f"Injected fault {status}")
    entry["status"] = status
    entry["fault"] = True
    return web.json_response(body, status=status, headers=fault.headers)


def build_app(seed: Seed, *, limits: RateLimits | None = None, webhook_time_scale: float = 1.0) -> web.Application:
    store = Store()
    sim = Sim(
        store=store,
        tokens=TokenStore(store),
        limiter=RateLimiter(limits or RateLimits()),
        faults=Faults(),
        dispatcher=Dispatcher(store, time_scale=webhook_time_scale),
    )
    store.load(seed)
    app = web.Application(middlewares=[pipeline])
    app[SIM] = sim
    app[INITIAL_SEED] = seed
    app.router.add_post("/oauth/token", sim.tokens.token_endpoint)
    app.router.add_get("/oauth/authorize", sim.tokens.authorize_endpoint)
    for table in (control.routes, routes_v2.routes, routes_fields.routes, routes_v1.routes):
        app.add_routes(table)

    async def lifecycle(app: web.Application) -> Any:
        await sim.dispatcher.start()
        yield
        await sim.dispatcher.close()

    app.cleanup_ctx.append(lifecycle)
    return app
