"""An httpx client on the sandbox, authenticated with the seeded API token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connector.sandbox.pipedrive import PipedriveSandbox

DEAL_ORDER = "c165bc61951e95e290ebcf2f7ee70400f367a9e4"  # seed: deal "D365 sales order" (varchar)
DEAL_TERMS = "6bd238249aa6b29ae08650866bda87a31dfd79a2"  # enum EXW 31 / FCA 32 / DAP 33
DEAL_CHANNELS = "b76cddaf213710643de6f56ddff3f38e2c80fdc0"  # set Web 41 / Field sales 42 / Partner 43
DEAL_FREIGHT = "bb143a489d92400d71a1cc713a73b40fe46aaf37"  # monetary
ORG_ACCOUNT = "cf99acb193e13ea55589931218b27e54c1affacd"  # organization "D365 customer account"


@pytest.fixture
async def api(pipedrive_sim: PipedriveSandbox) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-api-token": pipedrive_sim.api_token}
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url, headers=headers) as client:
        yield client
