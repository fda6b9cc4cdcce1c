"""Host-neutral HTTP request/response types for the function bodies, and the one error boundary.

`guarded` wraps every route: a client's junk (`BadInput`) is its 4xx, our own trouble (storage or Key
Vault unreachable, configuration missing) is a 503 with a JSON error and a reference to the log line,
and anything else is a 500 with the same shape. Never a traceback or an exception text from a stranger's
input in a response: details go to the (scrubbed) log under the reference.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.errors import ConfigError, TransientError
from connector.inputs import BadInput

log = logging.getLogger(__name__)
Route = Callable[["HttpIn"], Awaitable["HttpOut"]]


@dataclass(frozen=True)
class HttpIn:
    """A request as both hosts give it: `url` is the whole URL (scheme, host, path, query), as in Azure."""

    method: str
    url: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class HttpOut:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> HttpOut:
    return HttpOut(
        status,
        json.dumps(payload, default=str).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any) -> HttpOut:
    return json_response(status, {"error": message, **extra}, headers)


def single_header(req: HttpIn, name: str) -> str | None:
    """A header that must appear once; a repeated one (joined with commas by both hosts) is refused.

    Credentials and signatures never hold a comma, so a comma means two values: we do not guess which.
    """
    value = req.header(name)
    if value is not None and "," in value:
        raise BadInput(f"the {name} header is repeated or malformed", lines=[f"header {name}: one value expected"])
    return value


def guarded(route: Route) -> Route:
    """The error boundary of one route (see the module docstring)."""

    @functools.wraps(route)
    async def run(req: HttpIn) -> HttpOut:
        try:
            return await route(req)
        except BadInput as exc:
            return json_error(exc.status, exc.message, problems=exc.lines)
        except (TransientError, ConfigError) as exc:
            reference = uuid.uuid4().hex[:12]
            log.warning("%s %s: unavailable (ref %s): %s", req.method, route.__name__, reference, exc)
            what = "configuration" if isinstance(exc, ConfigError) else "storage or Key Vault unavailable"
            return json_error(
                503, f"the connector cannot serve this now ({what}); try again later", reference=reference
            )
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("%s %s: unexpected error (ref %s)", req.method, route.__name__, reference)
            return json_error(500, "internal error", reference=reference)

    return run
