import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from cryptography.fernet import Fernet

from connector.dev.sandbox.azurite import ACCOUNT, ACCOUNT_KEY, free_port
from connector.runtime import close_runtime, get_runtime
from connector.settings import get_settings
from tests.fixtures.platform import BASE_ENV, app_function

ROOT = Path(__file__).resolve().parents[2]


def health_function(name: str = "health_details") -> Any:
    return app_function(name)


async def call_health(name: str = "health_details") -> func.HttpResponse:
    req = func.HttpRequest(method="GET", url=f"/api/{name.replace('_', '/')}", body=b"")
    return await health_function(name).get_user_function()(req)


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, unique: str, tmp_path: Path) -> pytest.MonkeyPatch:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TABLE_PREFIX", unique)
    monkeypatch.setenv("MAPPING_FILE", str(ROOT / "config" / "mapping.example.yaml"))
    monkeypatch.setenv("ORDER_QUEUE", f"{unique}-order")
    monkeypatch.setenv("LOCAL_SECRETS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("LOCAL_SECRETS_FILE", str(tmp_path / "secrets.enc"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("name", "route", "level"), [("health", "health", "anonymous"), ("health_details", "health/details", "function")]
)
def test_health_bindings_anonymous_up_down_and_keyed_details(name: str, route: str, level: str) -> None:
    bindings = json.loads(health_function(name).get_function_json())["bindings"]
    trigger = next(b for b in bindings if b["type"] == "httpTrigger")
    assert trigger["route"] == route and trigger["methods"] == ["GET"]
    assert trigger["authLevel"].lower() == level


async def test_anonymous_health_says_only_up_or_down(app_env: pytest.MonkeyPatch, storage_conn: str) -> None:
    app_env.setenv("AzureWebJobsStorage", storage_conn)
    resp = await call_health("health")
    assert resp.status_code == 200 and json.loads(resp.get_body()) == {"status": "up"}
    await close_runtime()


async def test_anonymous_health_is_down_without_detail_when_storage_is(app_env: pytest.MonkeyPatch) -> None:
    dead_q, dead_t = free_port(), free_port()
    app_env.setenv(
        "AzureWebJobsStorage",
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"QueueEndpoint=http://127.0.0.1:{dead_q}/{ACCOUNT};TableEndpoint=http://127.0.0.1:{dead_t}/{ACCOUNT};",
    )
    resp = await call_health("health")
    assert resp.status_code == 503 and json.loads(resp.get_body()) == {"status": "down"}
    await close_runtime()


async def test_anonymous_health_reuses_one_probe_and_builds_no_client(
    app_env: pytest.MonkeyPatch, storage_conn: str
) -> None:
    app_env.setenv("AzureWebJobsStorage", storage_conn)
    rt = await get_runtime()
    pings = 0
    ping = rt.state.ping

    async def counted() -> None:
        nonlocal pings
        pings += 1
        await ping()

    app_env.setattr(rt.state, "ping", counted)
    answers = await asyncio.gather(*(call_health("health") for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20 and pings == 1
    assert await get_runtime() is rt  # the shared runtime, not one per call
    await close_runtime()


async def test_health_200_with_storage_up(app_env: pytest.MonkeyPatch, storage_conn: str) -> None:
    app_env.setenv("AzureWebJobsStorage", storage_conn)
    resp = await call_health()
    body = json.loads(resp.get_body())
    assert resp.status_code == 200, body
    assert body["status"] == "ok" and body["storage"]["tables"]["ok"] and body["storage"]["queues"]["ok"]
    assert body["versions"]["python"] and body["versions"]["azure-data-tables"] == "12.7.0"
    assert resp.mimetype == "application/json"


async def test_health_503_with_storage_down(app_env: pytest.MonkeyPatch) -> None:
    dead_q, dead_t = free_port(), free_port()  # nothing listens there
    app_env.setenv(
        "AzureWebJobsStorage",
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"QueueEndpoint=http://127.0.0.1:{dead_q}/{ACCOUNT};TableEndpoint=http://127.0.0.1:{dead_t}/{ACCOUNT};",
    )
    resp = await call_health()
    body = json.loads(resp.get_body())
    assert resp.status_code == 503
    assert body["status"] == "degraded"
    assert not body["storage"]["tables"]["ok"] and "unreachable" in body["storage"]["tables"]["error"]
    assert not body["storage"]["queues"]["ok"]
    assert ACCOUNT_KEY not in resp.get_body().decode()


async def test_health_503_names_missing_setting(app_env: pytest.MonkeyPatch) -> None:
    app_env.delenv("AzureWebJobsStorage", raising=False)
    app_env.delenv("D365_TENANT_ID")
    app_env.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    resp = await call_health()
    body = json.loads(resp.get_body())
    assert resp.status_code == 503 and "D365_TENANT_ID is missing" in body["storage"]["config"]["error"]


def test_function_app_import_is_lean() -> None:
    heavy = ["azure.data.tables", "azure.storage.queue", "azure.identity", "cryptography", "pydantic_settings", "httpx"]
    code = f"import sys, function_app; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


async def test_health_503_names_the_bad_mapping_key(
    app_env: pytest.MonkeyPatch, storage_conn: str, tmp_path: Path
) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text("version: 1\nlegal_entity: {default: usmf}\ncustomer: {defaults: {customer_group: '10'}}\n")
    app_env.setenv("AzureWebJobsStorage", storage_conn)
    app_env.setenv("MAPPING_FILE", str(bad))
    resp = await call_health()
    body = json.loads(resp.get_body())
    assert resp.status_code == 503
    assert body["storage"]["tables"]["ok"] and body["storage"]["queues"]["ok"]
    error = body["storage"]["mapping"]["error"]
    assert "mapping.yaml" in error and "customer.defaults.currency" in error
