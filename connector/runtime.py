"""The objects a handler needs, opened once per worker process and shared by its invocations.

Azure Functions keeps a warm worker's event loop and module state between invocations, so clients
(HTTP connection pools, token caches, custom-field definitions) are built on first use and reused.
Heavy imports stay inside the openers: the health probe only pays for storage.

This is the edge: flows never see a `Runtime`. Each flow's dependencies (`connector.flows.deps`) are built
here once per runtime (`order_deps()`, `master_deps()`, ...) and passed in by the handlers, the CLI and the
local runner.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from connector.settings import Settings, get_settings

if TYPE_CHECKING:
    from connector.d365.client import D365Client
    from connector.flows.deps import DiffDeps, MasterDeps, OrderDeps, PollDeps, RequeueDeps
    from connector.flows.runner import JobRunner
    from connector.mapping.config import MappingConfig
    from connector.pipedrive.client import PipedriveClient
    from connector.pipedrive.fields import CustomFields
    from connector.queues import Queues
    from connector.secrets import SecretStore
    from connector.state.store import StateStore


def worker_id() -> str:
    """Who holds a job lease: host, process and a per-process nonce (two runners on one host differ)."""
    return f"{socket.gethostname()}-{os.getpid()}-{_NONCE}"


_NONCE = uuid.uuid4().hex[:6]
D = TypeVar("D")


class Runtime:
    """Settings, secrets, state, queues and lazily opened API clients for one event loop."""

    def __init__(self, settings: Settings, secrets: SecretStore, state: StateStore, queues: Queues) -> None:
        self.settings = settings
        self.secrets = secrets
        self.state = state
        self.queues = queues
        self.worker = worker_id()
        self.lifecycle = settings.lifecycle()
        self._lock = asyncio.Lock()
        self._pipedrive: PipedriveClient | None = None
        self._d365: D365Client | None = None
        self._mapping: MappingConfig | None = None
        self._fields: dict[str, CustomFields] = {}
        self._deps: dict[str, Any] = {}  # each flow's deps, built once (see `_deps_of`)

    @classmethod
    def open(cls, settings: Settings | None = None) -> Runtime:
        from connector.queues import Queues
        from connector.secrets import open_secret_store
        from connector.state.store import StateStore

        settings = settings or get_settings()
        state = StateStore.from_settings(settings)
        return cls(settings, open_secret_store(settings), state, Queues.from_settings(settings, state))

    @property
    def runner(self) -> JobRunner:
        """The job runner of this worker (claims under `self.worker`, with the settings' lifecycle)."""
        from connector.flows.runner import JobRunner

        return JobRunner(self.state.jobs, self.worker, self.lifecycle)

    @property
    def mapping(self) -> MappingConfig:
        if self._mapping is None:
            from connector.mapping.config import load_mapping

            self._mapping = load_mapping(self.settings.mapping_file)
        return self._mapping

    @mapping.setter
    def mapping(self, cfg: MappingConfig) -> None:
        """Use another mapping (tests); the flows' deps are built again with it."""
        self._mapping = cfg
        self._deps.clear()

    async def pipedrive(self) -> PipedriveClient:
        async with self._lock:
            if self._pipedrive is None:
                from connector.pipedrive.factory import open_pipedrive

                self._pipedrive = await open_pipedrive(self.settings, self.secrets, policy=self.settings.retry_policy())
            return self._pipedrive

    async def d365(self) -> D365Client:
        async with self._lock:
            if self._d365 is None:
                from connector.d365.factory import open_d365

                self._d365 = await open_d365(
                    self.settings,
                    self.secrets,
                    policy=self.settings.retry_policy(),
                    http_timeout=self.settings.d365_timeout_seconds,
                )
            return self._d365

    async def custom_fields(self, entity: str) -> CustomFields:
        """One resolver per entity (deal, organization), so field definitions are read once per TTL."""
        client = await self.pipedrive()
        async with self._lock:
            if entity not in self._fields:
                from connector.pipedrive.fields import CustomFields

                self._fields[entity] = CustomFields.for_client(client, entity)  # type: ignore[arg-type]
            return self._fields[entity]

    # --- each flow's dependencies, built once per runtime -------------------------------------------

    async def _deps_of(self, name: str, build: Callable[[], Awaitable[D]]) -> D:
        """The deps `name`, built on first use; concurrent first uses keep the first one stored."""
        found = self._deps.get(name)
        if found is None:
            found = self._deps.setdefault(name, await build())
        return found

    async def _api_deps(self) -> dict[str, Any]:
        """The fields of `connector.flows.deps.ApiDeps` (opens both API clients)."""
        return {
            "cfg": self.mapping,
            "state": self.state,
            "pipedrive": await self.pipedrive(),
            "d365": await self.d365(),
            "org_fields": await self.custom_fields("organization"),
            "runner": self.runner,
        }

    async def order_deps(self) -> OrderDeps:
        """An order build, its preview and reconcile."""

        async def build() -> OrderDeps:
            from connector.flows.deps import OrderDeps

            return OrderDeps(**await self._api_deps(), deal_fields=await self.custom_fields("deal"))

        return await self._deps_of("order", build)

    async def master_deps(self) -> MasterDeps:
        """A master push; it keeps the accounting currencies read from D365."""

        async def build() -> MasterDeps:
            from connector.flows.deps import MasterDeps

            return MasterDeps(**await self._api_deps(), search_lag=self.settings.pipedrive_search_lag_seconds)

        return await self._deps_of("master", build)

    async def diff_deps(self) -> DiffDeps:
        """The full master diff: the master push's deps (shared with it), the queues and the diff's pace."""
        masters = await self.master_deps()

        async def build() -> DiffDeps:
            from connector.flows.deps import DiffDeps

            return DiffDeps(
                masters=masters,
                queues=self.queues,
                inline_seconds=self.settings.master_inline_seconds,
                concurrency=self.settings.master_push_concurrency,
            )

        return await self._deps_of("diff", build)

    async def poll_deps(self) -> PollDeps:
        """The poll of won deals (opens the Pipedrive client only)."""

        async def build() -> PollDeps:
            from connector.flows.deps import PollDeps

            return PollDeps(
                self.state,
                await self.pipedrive(),
                self.queues,
                self.settings.poll_overlap_seconds,
                archived=self.settings.poll_archived,
            )

        return await self._deps_of("poll", build)

    async def requeue_deps(self) -> RequeueDeps:
        """Replays and the reconciler (no API client)."""

        async def build() -> RequeueDeps:
            from connector.flows.deps import RequeueDeps

            return RequeueDeps(
                self.state, self.queues, self.settings.job_stale_seconds, self.settings.reconcile_grace_seconds
            )

        return await self._deps_of("requeue", build)

    async def close(self) -> None:
        self._deps.clear()
        for closer in (self._pipedrive, self._d365):
            if closer is not None:
                await closer.aclose()
        self._pipedrive = self._d365 = None
        await self.queues.close()
        await self.state.close()
        await self.secrets.close()


_runtimes: dict[asyncio.AbstractEventLoop, Runtime] = {}


async def get_runtime() -> Runtime:
    """The runtime of the running event loop (one per worker process in Functions; one per test)."""
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    if runtime is None:
        runtime = _runtimes[loop] = Runtime.open()
    return runtime


async def close_runtime() -> None:
    """Close and forget this loop's runtime (tests, the local runner's shutdown, settings changes)."""
    runtime = _runtimes.pop(asyncio.get_running_loop(), None)
    if runtime is not None:
        await runtime.close()
