"""`python -m connector.dev.sandbox.d365 --port 8802 --seed FILE`: run the simulator and print its base URL.

The client secret comes from --client-secret or D365_SANDBOX_CLIENT_SECRET (never printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from connector.dev.sandbox.d365.server import DEFAULT_CLIENT_SECRET, D365Sandbox


async def _serve(args: argparse.Namespace, seed: dict[str, Any] | None) -> None:
    secret = args.client_secret or os.environ.get("D365_SANDBOX_CLIENT_SECRET") or DEFAULT_CLIENT_SECRET
    sandbox = D365Sandbox(seed, port=args.port, host=args.host, page_size=args.page_size,
                          token_lifetime=args.token_lifetime, client_secret=secret)  # fmt: skip
    async with sandbox:
        print(sandbox.base_url, flush=True)
        print(f"tenant_id={sandbox.tenant_id} client_id={sandbox.client_id} ca_cert={sandbox.ca_cert_path}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m connector.dev.sandbox.d365", description=__doc__)
    parser.add_argument("--port", type=int, default=8802)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", help="JSON seed file (see docs/sandbox-d365.md); default seed when omitted")
    parser.add_argument("--page-size", type=int, default=10000)
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--client-secret", default=None)
    args = parser.parse_args()
    seed = json.loads(Path(args.seed).read_text(encoding="utf-8")) if args.seed else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args, seed))


if __name__ == "__main__":
    main()
