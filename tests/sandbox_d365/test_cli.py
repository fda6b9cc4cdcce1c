"""`python -m connector.dev.sandbox.d365` prints its base URL and serves the seed it was given."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from connector.dev.sandbox.d365 import D365Sandbox


def test_module_entry_point_prints_base_url_and_loads_seed(tmp_path: Path) -> None:
    seed = {"legal_entities": [{"LegalEntityId": "dat", "Name": "Demo"}], "default_company": "dat",
            "currencies": [{"CurrencyCode": "USD"}]}  # fmt: skip
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.dev.sandbox.d365", "--port", "0", "--seed", str(seed_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()  # blocks until the server is listening
        assert base_url.startswith("https://127.0.0.1:")
        details = proc.stdout.readline()
        assert "client_id=" in details and "secret" not in details.replace("client_secret", "")
        ca = ssl.create_default_context(cafile=details.split("ca_cert=")[1].strip())
        info = httpx.get(f"{base_url}/_sandbox/info", verify=ca).json()
        assert info["base_url"] == base_url and info["default_company"] == "dat"
        assert httpx.get(f"{base_url}/data/Currencies", verify=ca).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_injected_latency_stalls_the_answer(d365_sim: D365Sandbox, api: httpx.AsyncClient) -> None:
    d365_sim.inject_fault(latency=2.0, path="/data/Currencies")
    try:
        await api.get("Currencies", timeout=0.2)
    except httpx.ReadTimeout:
        pass
    else:
        raise AssertionError("the injected latency should outlast the client timeout")
    assert (await api.get("Currencies", timeout=5)).status_code == 200
