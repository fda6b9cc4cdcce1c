from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential

from connector.dev.sandbox.d365 import D365Sandbox


@pytest.fixture
async def api(d365_sim: D365Sandbox, d365_credential: ClientSecretCredential) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client with a token obtained through azure-identity, base URL = /data/."""
    token = await d365_credential.get_token(d365_sim.scope)
    async with httpx.AsyncClient(
        base_url=d365_sim.data_url + "/",
        verify=d365_sim.ssl_context(),
        headers={"Authorization": f"Bearer {token.token}"},
    ) as client:
        yield client
