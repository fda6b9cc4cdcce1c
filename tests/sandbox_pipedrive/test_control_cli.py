"""The /_sandbox/ control API over HTTP, the OAuth consent redirect, and the command-line server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx

from connector.dev.sandbox.pipedrive import PipedriveSandbox

from .conftest import Receiver

ROOT = Path(__file__).resolve().parents[2]


async def test_control_api_round_trip(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    api = {"x-api-token": pipedrive_sim.api_token}
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url) as client:
        seed = {"api_tokens": ["tiny"], "organizations": [{"id": 10, "name": "Only Org"}],
                "products": [{"id": 5, "name": "P", "code": "P5"}],
                "deals": [{"id": 7, "title": "Only deal", "org_id": 10, "products": [{"product_id": 5, "item_price": 2, "quantity": 3}]}]}  # fmt: skip
        reset = await client.post("/_sandbox/reset", json=seed)
        assert reset.json()["data"] == {"organizations": 1, "persons": 0, "products": 1, "deals": 1}
        assert (await client.get("/api/v2/deals", headers=api)).status_code == 401  # old token is gone
        deals = (await client.get("/api/v2/deals", headers={"x-api-token": "tiny"})).json()["data"]
        assert [d["id"] for d in deals] == [7]
        added = await client.post("/_sandbox/seed", json={"persons": [{"name": "Per Son", "org_id": 10}]})
        assert added.json()["data"]["persons"] == 1
        bad_seed = await client.post("/_sandbox/seed", json={"deals": [{"titel": "typo"}]})
        assert bad_seed.status_code == 400 and "titel" in bad_seed.json()["error"]

        hook = {"subscription_url": receiver.url, "event_action": "change", "event_object": "deal", "name": "h"}
        await client.post("/v1/webhooks", json=hook, headers={"x-api-token": "tiny"})
        changed = await client.patch("/_sandbox/deals/7", json={"status": "won"})
        assert changed.json()["data"]["status"] == "won"
        await pipedrive_sim.wait_for_deliveries(1)
        deliveries = (await client.get("/_sandbox/webhook-deliveries")).json()["data"]
        assert deliveries[0]["ok"] and deliveries[0]["body"]["meta"]["change_source"] == "app"

        limits = await client.put("/_sandbox/limits", json={"plan": "lite", "daily_tokens": 1})
        assert limits.json()["data"]["plan"] == "lite"
        assert (await client.get("/api/v2/deals/7", headers={"x-api-token": "tiny"})).status_code == 200
        assert (await client.get("/api/v2/deals/7", headers={"x-api-token": "tiny"})).status_code == 429
        assert (await client.get("/_sandbox/limits")).json()["data"]["daily_used"] == 1

        log = (await client.get("/_sandbox/requests")).json()["data"]
        assert [e["path"] for e in log][-2:] == ["/api/v2/deals/7", "/api/v2/deals/7"]
        await client.delete("/_sandbox/requests")
        assert (await client.get("/_sandbox/requests")).json()["data"] == []

        reset_default = await client.post("/_sandbox/reset")
        assert reset_default.json()["data"]["deals"] == 4


async def test_oauth_codes_and_expiry_over_control_api(pipedrive_sim: PipedriveSandbox) -> None:
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url) as client:
        code = (await client.post("/_sandbox/oauth/codes", json={"client_id": "sandbox-client"})).json()["data"]["code"]
        form = {"grant_type": "authorization_code", "code": code, "client_id": "sandbox-client",
                "client_secret": "sandbox-client-secret"}  # fmt: skip
        token = (await client.post("/oauth/token", data=form)).json()  # body credentials are accepted too
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        assert (await client.get("/v1/users/me", headers=bearer)).status_code == 200
        assert (await client.post("/_sandbox/oauth/expire")).json()["data"] == {"expired": 1}
        assert (await client.get("/v1/users/me", headers=bearer)).status_code == 401
        unknown = await client.post("/_sandbox/oauth/codes", json={"client_id": "nope"})
        assert unknown.status_code == 400


async def test_authorize_redirects_with_code_and_state(pipedrive_sim: PipedriveSandbox) -> None:
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url) as client:
        params = {"client_id": "sandbox-client", "redirect_uri": "http://127.0.0.1/callback", "state": "s1"}
        response = await client.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    location = httpx.URL(response.headers["Location"])
    assert location.params["state"] == "s1" and len(location.params["code"]) == 40


async def test_command_line_server_prints_base_url_and_serves(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"api_tokens": ["cli-token"], "products": [{"name": "Cli product", "code": "C1"}]}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector.dev.sandbox.pipedrive", "--port", "0", "--seed", str(seed),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        base_url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=base_url, headers={"x-api-token": "cli-token"}) as client:
            products = (await client.get("/api/v2/products")).json()["data"]
        assert [p["code"] for p in products] == ["C1"]
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
