"""The simulator's parts, shared by the route modules through one typed aiohttp app key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .auth import TokenStore
from .envelope import bad_request
from .faults import Faults
from .models import Seed
from .ratelimit import RateLimiter
from .store import Store
from .webhooks import Dispatcher


@dataclass
class Sim:
    store: Store
    tokens: TokenStore
    limiter: RateLimiter
    faults: Faults
    dispatcher: Dispatcher
    log: list[dict[str, Any]] = field(default_factory=list)


SIM = web.AppKey("sim", Sim)
INITIAL_SEED = web.AppKey("initial_seed", Seed)  # the Seed the app started with, for /_sandbox/reset


def sim(request: web.Request) -> Sim:
    return request.app[SIM]


async def read_json(request: web.Request) -> Any:
    """The JSON body, or a 400 naming the problem (malformed JSON is never a 500)."""
    raw = await request.read()
    if not raw:
        raise bad_request("request body is empty; a JSON object is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body is not valid JSON ({exc})") from exc


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request(f"{name}: '{raw}' is not an integer") from exc
