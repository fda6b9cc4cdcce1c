import pytest
from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableServiceClient


async def test_azurite_tables_reject_duplicate_insert(storage_conn: str, unique: str) -> None:
    async with TableServiceClient.from_connection_string(storage_conn) as svc:
        table = await svc.create_table(unique)
        await table.create_entity({"PartitionKey": "p", "RowKey": "r"})
        with pytest.raises(ResourceExistsError):
            await table.create_entity({"PartitionKey": "p", "RowKey": "r"})
