from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from connector.d365.auth import D365TokenAuth, client_secret_factory
from connector.d365.client import D365Client
from connector.dev.sandbox.d365 import D365Sandbox
from connector.retry import RetryPolicy

# No backoff or jitter, so waits we record are exactly what the server asked for.
POLICY = RetryPolicy(max_attempts=4, backoff_initial=0, backoff_max=0, jitter=0, max_inline_wait=30)


class Waits:
    """A `sleep` for the client that records each wait and yields instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.on_wait: Callable[[], object] | None = None  # e.g. the server's window resetting meanwhile

    async def __call__(self, delay: float) -> None:
        self.delays.append(round(delay, 3))
        if self.on_wait is not None:
            self.on_wait()
        await asyncio.sleep(0)


def make_auth(sim: D365Sandbox, **kwargs: object) -> D365TokenAuth:
    factory = client_secret_factory(
        sim.tenant_id, sim.client_id, sim.client_secret, authority=sim.authority, ca_bundle=sim.ca_cert_path
    )
    return D365TokenAuth(factory, sim.base_url, **kwargs)  # type: ignore[arg-type]


def make_client(sim: D365Sandbox, waits: Waits, **kwargs: object) -> D365Client:
    auth = kwargs.pop("auth", None) or make_auth(sim)
    return D365Client(sim.base_url, auth, policy=POLICY, verify=sim.ca_cert_path, sleep=waits, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
async def d365(d365_sim: D365Sandbox, waits: Waits) -> AsyncIterator[D365Client]:
    async with make_client(d365_sim, waits) as client:
        yield client
