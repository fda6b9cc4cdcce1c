"""Shared plumbing of the state tables: lazy creation, key encoding, storage error mapping."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables.aio import TableClient, TableServiceClient

from connector.errors import ConfigError, TransientError

# Characters Table Storage forbids in PartitionKey/RowKey, plus '%' (our escape) and controls.
_FORBIDDEN = re.compile(r"[/\\#?%\x00-\x1f\x7f-\x9f]")


def encode_key(value: str) -> str:
    """Make any text a legal Table key, reversibly (percent-escapes the forbidden characters)."""
    if not value:
        raise ValueError("a table key cannot be empty")
    return _FORBIDDEN.sub(lambda m: f"%{ord(m.group()):02X}", value)


def decode_key(value: str) -> str:
    return re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


def now() -> datetime:
    return datetime.now(UTC)


def dumps(value: object, *, limit: int = 30_000) -> str:
    """JSON for a string property; Table string properties hold at most 32K UTF-16 chars."""
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) > limit:
        text = json.dumps({"truncated": True, "head": text[: limit - 100]})
    return text


def loads(text: object) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": text[:200]}


@asynccontextmanager
async def storage_errors(what: str, where: str) -> AsyncIterator[None]:
    """Turn SDK exceptions into our taxonomy with a message that names the operation and endpoint.

    Conflicts (409/412) are left to the callers: they are the claim/ETag logic, not failures.
    """
    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientError(f"{what}: storage unreachable at {where} ({type(exc).__name__})") from None
    except ClientAuthenticationError:
        raise ConfigError(f"{what}: storage at {where} rejected our credentials") from None
    except HttpResponseError as exc:
        if exc.status_code in (409, 412, 404):
            raise
        if exc.status_code in (401, 403):
            raise ConfigError(f"{what}: storage at {where} denied access (HTTP {exc.status_code})") from None
        raise TransientError(f"{what}: storage at {where} answered HTTP {exc.status_code}") from None


class LazyTable:
    """One table, created on first use (once per process), shared by its store class."""

    def __init__(self, service: TableServiceClient, name: str) -> None:
        self._service = service
        self.name = name
        self._client: TableClient | None = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return f"{self._service.url.rstrip('/')}/{self.name}"

    async def client(self) -> TableClient:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                async with storage_errors(f"creating table {self.name}", self._service.url):
                    with suppress(ResourceExistsError):
                        await self._service.create_table(self.name)
                self._client = self._service.get_table_client(self.name)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
