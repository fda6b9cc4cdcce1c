"""StateStore: the four state tables behind one shared Table service client."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from azure.data.tables.aio import TableServiceClient

from connector.settings import StorageTarget, TableNames
from connector.state.audit import AuditLog
from connector.state.idmap import Checkpoints, IdMap
from connector.state.jobs import JobStore
from connector.state.tables import LazyTable, storage_errors

if TYPE_CHECKING:
    from connector.settings import Settings

# The SDK retries connection errors 10 times with backoff by default; a worker should fail fast and let
# the queue retry instead (its visibility timeout is the backoff).
DEFAULT_RETRY_TOTAL = 3


class StateStore:
    """jobs, audit, idmap and checkpoints; tables are created on first use. Close with `close()`."""

    def __init__(self, service: TableServiceClient, names: TableNames, *, credential: Any = None) -> None:
        self._service = service
        self._credential = credential
        self.names = names
        self._tables = [LazyTable(service, name) for name in (names.jobs, names.audit, names.idmap, names.checkpoints)]
        self.jobs = JobStore(self._tables[0])
        self.audit = AuditLog(self._tables[1])
        self.idmap = IdMap(self._tables[2])
        self.checkpoints = Checkpoints(self._tables[3])

    @classmethod
    def from_connection_string(
        cls, conn: str, *, names: TableNames | None = None, retry_total: int = DEFAULT_RETRY_TOTAL, **kwargs: Any
    ) -> StateStore:
        service = TableServiceClient.from_connection_string(conn, retry_total=retry_total, **kwargs)
        return cls(service, names or TableNames())

    @classmethod
    def from_endpoint(
        cls, endpoint: str, credential: Any, *, names: TableNames | None = None, retry_total: int = DEFAULT_RETRY_TOTAL
    ) -> StateStore:
        service = TableServiceClient(endpoint=endpoint, credential=credential, retry_total=retry_total)
        return cls(service, names or TableNames(), credential=credential)

    @classmethod
    def from_target(cls, target: StorageTarget, names: TableNames, **kwargs: Any) -> StateStore:
        if target.connection_string is not None:
            return cls.from_connection_string(target.connection_string.get_secret_value(), names=names, **kwargs)
        assert target.table_endpoint is not None
        return cls.from_endpoint(target.table_endpoint, target.credential(), names=names, **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> StateStore:
        return cls.from_target(settings.storage, settings.tables, **kwargs)

    @property
    def endpoint(self) -> str:
        return str(self._service.url)

    async def ping(self) -> None:
        """One cheap round trip (list one table); raises TransientError/ConfigError when storage is not usable."""
        async with storage_errors("checking table storage", self.endpoint):
            async for _ in self._service.list_tables(results_per_page=1):
                break

    async def close(self) -> None:
        for table in self._tables:
            await table.close()
        await self._service.close()
        if self._credential is not None and hasattr(self._credential, "close"):
            await self._credential.close()

    async def __aenter__(self) -> StateStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
