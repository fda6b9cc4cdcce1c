"""Health: `GET /api/health` (anonymous) says only up or down; `GET /api/health/details` (function key)
reports storage, queues, the mapping and versions, each with its error.

The anonymous probe is for load balancers and uptime checks on the open internet: it uses the worker's
shared clients (no credential or client built per call), answers from a result a few seconds old when
asked often, and says nothing an attacker could use (no versions, no error texts).
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from importlib import metadata
from typing import Any

from pydantic import BaseModel

from connector.errors import ConnectorError
from connector.settings import Settings, get_settings

LIVENESS_TIMEOUT = 2.0
LIVENESS_TTL = 5.0  # seconds a liveness answer is reused: a flood of probes costs one storage call
CHECK_TIMEOUT = 5.0  # seconds per service: a health probe must answer quickly, not hang on a dead endpoint
_PACKAGES = ("ml-connector", "azure-functions", "azure-data-tables", "azure-storage-queue", "pydantic", "httpx")


class ServiceCheck(BaseModel):
    ok: bool
    error: str | None = None


class HealthReport(BaseModel):
    status: str  # "ok" | "degraded"
    storage: dict[str, ServiceCheck]
    versions: dict[str, str]

    @property
    def http_status(self) -> int:
        return 200 if self.status == "ok" else 503


log = logging.getLogger(__name__)
_liveness: dict[asyncio.AbstractEventLoop, tuple[float, asyncio.Future[bool]]] = {}


async def _probe() -> bool:
    from connector.runtime import get_runtime

    try:
        rt = await get_runtime()
        await asyncio.wait_for(rt.state.ping(), LIVENESS_TIMEOUT)
    except Exception as exc:  # down, whatever the reason; the reason goes to the log only
        log.warning("health: down (%s: %s)", type(exc).__name__, exc)
        return False
    return True


async def is_up() -> bool:
    """Table storage answers through the shared runtime; one probe per LIVENESS_TTL per worker, shared."""
    loop = asyncio.get_running_loop()
    cached = _liveness.get(loop)
    if cached is None or cached[0] < time.monotonic():
        _liveness.clear()  # one entry: the running loop's (tests open a loop per test)
        cached = _liveness[loop] = (time.monotonic() + LIVENESS_TTL, asyncio.ensure_future(_probe()))
    return await asyncio.shield(cached[1])


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


async def _check(probe: Any) -> ServiceCheck:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except TimeoutError:
        return ServiceCheck(ok=False, error=f"no answer within {CHECK_TIMEOUT:.0f}s")
    except ConnectorError as exc:
        return ServiceCheck(ok=False, error=str(exc))
    except Exception as exc:  # a probe must report, never raise
        return ServiceCheck(ok=False, error=type(exc).__name__)
    return ServiceCheck(ok=True)


async def health_report(settings: Settings | None = None) -> HealthReport:
    """Probe Table and Queue storage with one cheap call each; never raises."""
    from connector.queues import Queues
    from connector.state import StateStore

    try:
        settings = settings or get_settings()
    except ConnectorError as exc:
        failed = ServiceCheck(ok=False, error=str(exc))
        return HealthReport(status="degraded", storage={"config": failed}, versions=versions())
    state = StateStore.from_target(settings.storage, settings.tables, retry_total=0)
    queues = Queues.from_target(settings.storage, state, retry_total=0)
    try:

        async def queue_probe() -> None:
            await queues.depth(settings.order_queue)

        tables, queue = await asyncio.gather(_check(state.ping), _check(queue_probe))
    finally:
        await queues.close()
        await state.close()
    mapping = _mapping_check(settings)
    ok = tables.ok and queue.ok and mapping.ok
    return HealthReport(
        status="ok" if ok else "degraded",
        storage={"tables": tables, "queues": queue, "mapping": mapping},
        versions=versions(),
    )


def _mapping_check(settings: Settings) -> ServiceCheck:
    """The mapping file is read on first use by the flows; health reports a bad one up front, by key."""
    from connector.mapping.config import load_mapping

    try:
        load_mapping(settings.mapping_file)
    except ConnectorError as exc:
        return ServiceCheck(ok=False, error=str(exc))
    return ServiceCheck(ok=True)
