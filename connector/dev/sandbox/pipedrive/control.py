"""The `/_sandbox/` control API (no auth; loopback only): reset/seed, change deals, faults, logs.

Documented in docs/sandbox-pipedrive.md. Each route mirrors a `PipedriveSandbox` method so tests
running the simulator out of process can do the same things over HTTP.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from .context import INITIAL_SEED, Sim, path_id, read_json, sim
from .envelope import ApiError, error_body, ok
from .models import FaultSpec, OAuthCodeRequest, Seed, WebhookFaultSpec
from .ratelimit import RateLimits

routes = web.RouteTableDef()
P = "/_sandbox"


def parse(model: type[Any], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise ApiError(400, error_body("Invalid control request: " + "; ".join(lines))) from exc


def reset(s: Sim, seed: Seed) -> dict[str, int]:
    """Back to exactly `seed`: data, tokens, windows, faults, logs and deliveries all cleared."""
    s.store.clear()
    s.tokens.clear()
    s.limiter.reset()
    s.faults.clear()
    s.dispatcher.reset()
    s.log.clear()
    return s.store.load(seed)


@routes.post(f"{P}/reset")
async def reset_route(request: web.Request) -> web.Response:
    s = sim(request)
    seed = parse(Seed, await read_json(request)) if request.can_read_body else request.app[INITIAL_SEED]
    return ok(reset(s, seed))


@routes.post(f"{P}/seed")
async def seed_route(request: web.Request) -> web.Response:
    """Add records to the current data (ids given in the seed must be free)."""
    return ok(sim(request).store.load(parse(Seed, await read_json(request))))


@routes.patch(f"{P}/deals/{{id}}")
async def change_deal(request: web.Request) -> web.Response:
    """Change a deal as a user in the Pipedrive app would (change_source "app"); fires webhooks."""
    s = sim(request)
    return ok(s.store.update("deal", path_id(request), await read_json(request), source="app"))


@routes.post(f"{P}/faults")
async def add_fault(request: web.Request) -> web.Response:
    spec = parse(FaultSpec, await read_json(request))
    sim(request).faults.add(spec)
    return ok(sim(request).faults.pending())


@routes.get(f"{P}/faults")
async def list_faults(request: web.Request) -> web.Response:
    return ok(sim(request).faults.pending())


@routes.delete(f"{P}/faults")
async def clear_faults(request: web.Request) -> web.Response:
    sim(request).faults.clear()
    return ok([])


@routes.post(f"{P}/webhook-faults")
async def webhook_fault(request: web.Request) -> web.Response:
    spec = parse(WebhookFaultSpec, await read_json(request))
    d = sim(request).dispatcher
    if spec.mode == "drop":
        d.drop_next += spec.times
    else:
        d.duplicate_next += spec.times
    return ok({"drop_next": d.drop_next, "duplicate_next": d.duplicate_next})


@routes.get(f"{P}/requests")
async def request_log(request: web.Request) -> web.Response:
    return ok(sim(request).log)


@routes.delete(f"{P}/requests")
async def clear_request_log(request: web.Request) -> web.Response:
    sim(request).log.clear()
    return ok([])


@routes.get(f"{P}/webhook-deliveries")
async def deliveries(request: web.Request) -> web.Response:
    return ok(sim(request).dispatcher.deliveries)


@routes.post(f"{P}/oauth/codes")
async def oauth_code(request: web.Request) -> web.Response:
    """Skip the browser consent: issue an authorization code as if the user had approved the app."""
    body = parse(OAuthCodeRequest, await read_json(request))
    return ok({"code": sim(request).tokens.issue_code(body.client_id, body.scope)})


@routes.post(f"{P}/oauth/expire")
async def oauth_expire(request: web.Request) -> web.Response:
    return ok({"expired": sim(request).tokens.expire_access_tokens()})


@routes.get(f"{P}/limits")
async def get_limits(request: web.Request) -> web.Response:
    s = sim(request)
    return ok({**s.limiter.limits.model_dump(), "daily_used": s.limiter.used_today})


@routes.put(f"{P}/limits")
async def put_limits(request: web.Request) -> web.Response:
    """Replace the limits and start fresh windows and budget."""
    s = sim(request)
    s.limiter.limits = parse(RateLimits, await read_json(request))
    s.limiter.reset()
    return ok(s.limiter.limits.model_dump())
