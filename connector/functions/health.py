"""GET /api/health: is storage reachable (tables and queues), and which versions are running."""

from __future__ import annotations

import asyncio
import platform
from importlib import metadata
from typing import Any

from pydantic import BaseModel

from connector.errors import ConnectorError
from connector.settings import Settings, get_settings

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
