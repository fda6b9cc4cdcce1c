"""Run `ml-connector` as a separate process, as an operator does, with the stack's settings."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from typing import Any


async def cli(env: Mapping[str, str], *args: str) -> tuple[int, Any, str]:
    """(exit code, parsed JSON stdout or None, stdout + stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector.cli", *args,
        env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    text = out.decode()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return proc.returncode or 0, parsed, text + err.decode()
