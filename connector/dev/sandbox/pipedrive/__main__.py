"""`python -m connector.dev.sandbox.pipedrive --port 8801 --seed FILE`: serve until killed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path

from .ratelimit import RateLimits
from .sandbox import PipedriveSandbox


async def _serve(port: int, seed: dict[str, object] | None, time_scale: float, plan: str) -> None:
    async with PipedriveSandbox(
        seed, port=port, webhook_time_scale=time_scale, limits=RateLimits.model_validate({"plan": plan})
    ) as sandbox:
        print(sandbox.base_url, flush=True)
        print(f"api token: {sandbox.api_token}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m connector.dev.sandbox.pipedrive", description=__doc__)
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--seed", type=Path, help="seed JSON (default: the built-in distributor data set)")
    parser.add_argument("--webhook-time-scale", type=float, default=1.0, help="multiplies webhook retry delays")
    parser.add_argument("--plan", default="growth", choices=["lite", "growth", "premium", "ultimate"])
    args = parser.parse_args()
    seed = json.loads(args.seed.read_text()) if args.seed else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, seed, args.webhook_time_scale, args.plan))


if __name__ == "__main__":
    main()
