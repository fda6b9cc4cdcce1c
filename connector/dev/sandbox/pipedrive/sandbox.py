"""`PipedriveSandbox`: the simulator started in-process on a loopback port, with Python-side helpers.

The helpers call the same code as the `/_sandbox/` control API, so in-process tests and out-of-process
users (CLI, demo) see identical behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import build_app
from .context import SIM, Sim
from .control import reset
from .models import FaultSpec, Seed, WebhookFaultSpec
from .ratelimit import RateLimits

DEFAULT_SEED_PATH = Path(__file__).with_name("seed_default.json")


def default_seed() -> dict[str, Any]:
    """The distributor data set the `pipedrive_sim` fixture starts with (a fresh copy each call)."""
    data: dict[str, Any] = json.loads(DEFAULT_SEED_PATH.read_text())
    return data


class PipedriveSandbox:
    """Async context manager: `async with PipedriveSandbox() as pd: httpx.get(pd.base_url + "/api/v2/deals", ...)`."""

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        *,
        limits: RateLimits | None = None,
        webhook_time_scale: float = 1.0,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self._seed = Seed.model_validate(seed if seed is not None else default_seed())
        self._host = host
        self._port = port
        self.app = build_app(self._seed, limits=limits, webhook_time_scale=webhook_time_scale)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @property
    def sim(self) -> Sim:
        return self.app[SIM]

    @property
    def api_token(self) -> str:
        """A valid API token of the seed (the first one)."""
        tokens = list(self.sim.store.api_tokens)
        if not tokens:
            raise RuntimeError("the seed defines no api_tokens")
        return tokens[0]

    async def start(self) -> PipedriveSandbox:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets, "site did not bind"  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://{self._host}:{port}"
        self.sim.dispatcher.host = f"{self._host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> PipedriveSandbox:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---- helpers mirroring /_sandbox/ ----------------------------------------------------------------
    def reset(self, seed: dict[str, Any] | None = None) -> dict[str, int]:
        return reset(self.sim, Seed.model_validate(seed) if seed is not None else self._seed)

    def seed(self, data: dict[str, Any]) -> dict[str, int]:
        """Add records (organizations, persons, products, deals with products, fields...) to the data."""
        return self.sim.store.load(Seed.model_validate(data))

    def set_deal_status(self, deal_id: int, status: str, **changes: Any) -> dict[str, Any]:
        """Change a deal as a user in the app would; fires webhooks like the real service."""
        return self.change_deal(deal_id, status=status, **changes)

    def change_deal(self, deal_id: int, **changes: Any) -> dict[str, Any]:
        return dict(self.sim.store.update("deal", deal_id, changes, source="app"))

    def inject_fault(
        self,
        path: str,
        status: int | None = None,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        latency: float = 0.0,
        method: str | None = None,
        after: bool = False,
    ) -> None:
        """The next `times` requests whose path matches the glob `path` get `status` (+ headers/latency);
        `after=True` serves them first, so a write is saved and only its answer is replaced."""
        spec = FaultSpec(path=path, status=status, times=times, headers=headers or {}, body=body, latency=latency,
                         method=method, after=after)  # fmt: skip
        self.sim.faults.add(spec)

    def webhook_fault(self, mode: str, times: int = 1) -> None:
        """'drop' loses the next `times` deliveries; 'duplicate' sends each of them twice."""
        spec = WebhookFaultSpec.model_validate({"mode": mode, "times": times})
        if spec.mode == "drop":
            self.sim.dispatcher.drop_next += spec.times
        else:
            self.sim.dispatcher.duplicate_next += spec.times

    def set_limits(self, limits: RateLimits) -> None:
        self.sim.limiter.limits = limits
        self.sim.limiter.reset()

    def set_search_lag(self, seconds: float) -> None:
        """Writes become findable by the search routes only this long after them (0: at once)."""
        self.sim.store.search.lag = max(0.0, seconds)

    def issue_auth_code(self, client_id: str, scope: str | None = None) -> str:
        return self.sim.tokens.issue_code(client_id, scope)

    def expire_access_tokens(self) -> int:
        return self.sim.tokens.expire_access_tokens()

    def requests(self) -> list[dict[str, Any]]:
        """The API request log (control routes excluded); tokens are never logged."""
        return list(self.sim.log)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return list(self.sim.dispatcher.deliveries)

    async def wait_for_deliveries(
        self,
        n: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented signature; bounded by asyncio.wait_for
        *,
        ok_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Wait until `n` delivery attempts (or `n` successful ones) are recorded; TimeoutError otherwise."""
        return await self.sim.dispatcher.wait_for(n, timeout, ok_only=ok_only)

    def deal(self, deal_id: int) -> dict[str, Any]:
        """The stored deal (v2 shape), for assertions."""
        return dict(self.sim.store.get("deal", deal_id))
