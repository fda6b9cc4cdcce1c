"""Id maps (source key -> target key + content hash of what was last pushed) and checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import BaseModel, ConfigDict

from connector.state.tables import LazyTable, decode_key, encode_key, now, storage_errors


class IdMapEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    source_key: str
    target_key: str
    content_hash: str = ""
    updated: datetime | None = None

    @classmethod
    def from_entity(cls, entity: Any) -> IdMapEntry:
        return cls(
            kind=decode_key(entity["PartitionKey"]),
            source_key=decode_key(entity["RowKey"]),
            target_key=entity.get("TargetKey", ""),
            content_hash=entity.get("ContentHash", ""),
            updated=entity.get("Updated"),
        )


class IdMap:
    """kind (`customer`, `product`, ...) / source key -> target key; last writer wins (upsert)."""

    def __init__(self, table: LazyTable) -> None:
        self._table = table

    async def get(self, kind: str, source_key: str) -> IdMapEntry | None:
        client = await self._table.client()
        async with storage_errors(f"reading id map {kind}/{source_key}", self._table.where):
            try:
                entity = await client.get_entity(encode_key(kind), encode_key(source_key))
            except ResourceNotFoundError:
                return None
        return IdMapEntry.from_entity(entity)

    async def put(self, kind: str, source_key: str, target_key: str, content_hash: str = "") -> IdMapEntry:
        entity = {
            "PartitionKey": encode_key(kind),
            "RowKey": encode_key(source_key),
            "TargetKey": target_key,
            "ContentHash": content_hash,
            "Updated": now(),
        }
        client = await self._table.client()
        async with storage_errors(f"writing id map {kind}/{source_key}", self._table.where):
            await client.upsert_entity(entity, mode=UpdateMode.REPLACE)
        return IdMapEntry.from_entity(entity)

    async def put_many(self, kind: str, rows: list[tuple[str, str, str]]) -> None:
        """Upsert (source key, target key, content hash) rows of one kind, 100 per batch transaction
        (one partition): a full sync's id-map writes cost one storage call per hundred records."""
        client = await self._table.client()
        for start in range(0, len(rows), 100):
            operations: list[Any] = [
                (
                    "upsert",
                    {
                        "PartitionKey": encode_key(kind),
                        "RowKey": encode_key(source),
                        "TargetKey": target,
                        "ContentHash": digest,
                        "Updated": now(),
                    },
                    {"mode": UpdateMode.REPLACE},
                )
                for source, target, digest in dict((r[0], r) for r in rows[start : start + 100]).values()
            ]
            async with storage_errors(f"writing id map {kind} ({len(operations)} rows)", self._table.where):
                await client.submit_transaction(operations)

    async def all(self, kind: str) -> list[IdMapEntry]:
        """Every entry of one kind (the master diff compares hashes against these)."""
        client = await self._table.client()
        async with storage_errors(f"listing id map {kind}", self._table.where):
            pages = client.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(kind)})
            return [IdMapEntry.from_entity(entity) async for entity in pages]


class Checkpoints:
    """Named string values (the poll watermark and similar); PartitionKey = RowKey = name."""

    def __init__(self, table: LazyTable) -> None:
        self._table = table

    async def get(self, name: str) -> str | None:
        client = await self._table.client()
        async with storage_errors(f"reading checkpoint {name}", self._table.where):
            try:
                entity = await client.get_entity(encode_key(name), encode_key(name))
            except ResourceNotFoundError:
                return None
        return str(entity.get("Value", ""))

    async def set(self, name: str, value: str) -> None:
        entity = {"PartitionKey": encode_key(name), "RowKey": encode_key(name), "Value": value, "Updated": now()}
        client = await self._table.client()
        async with storage_errors(f"writing checkpoint {name}", self._table.where):
            await client.upsert_entity(entity, mode=UpdateMode.REPLACE)
