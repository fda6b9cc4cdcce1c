import logging

import pytest

from connector.errors import ConfigError
from connector.settings import DEV_STORAGE_CONNECTION_STRING, get_settings, load_settings
from tests.fixtures.platform import BASE_ENV

REQUIRED = [
    "PIPEDRIVE_COMPANY_DOMAIN",
    "PIPEDRIVE_WEBHOOK_USER",
    "D365_ENVIRONMENT_URL",
    "D365_TENANT_ID",
    "D365_CLIENT_ID",
    "D365_DEFAULT_LEGAL_ENTITY",
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*REQUIRED, "AzureWebJobsStorage", "AzureWebJobsStorage__accountName", "KEY_VAULT_URL"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize("missing", REQUIRED)
def test_missing_required_setting_is_named(env: pytest.MonkeyPatch, missing: str) -> None:
    env.delenv(missing)
    with pytest.raises(ConfigError) as info:
        get_settings()
    assert str(info.value) == f"invalid configuration: {missing} is missing"


def test_missing_storage_names_both_forms(env: pytest.MonkeyPatch) -> None:
    env.delenv("AzureWebJobsStorage")
    with pytest.raises(ConfigError, match=r"AzureWebJobsStorage.*AzureWebJobsStorage__accountName"):
        get_settings()


def test_bad_values_are_named_without_echoing_them(env: pytest.MonkeyPatch) -> None:
    env.setenv("PIPEDRIVE_AUTH_MODE", "password-xyz")
    env.setenv("JOB_LEASE_SECONDS", "soon")
    env.setenv("ORDER_QUEUE", "Orders_Q")
    with pytest.raises(ConfigError) as info:
        get_settings()
    text = str(info.value)
    assert "PIPEDRIVE_AUTH_MODE" in text and "JOB_LEASE_SECONDS" in text and "ORDER_QUEUE" in text
    assert "password-xyz" not in text and "soon" not in text


def test_defaults_and_derived_values(env: pytest.MonkeyPatch) -> None:
    env.setenv("TABLE_PREFIX", "dev")
    env.setenv("RETRY_MAX_INLINE_WAIT", "12.5")
    s = get_settings()
    assert s is get_settings()  # cached
    assert s.pipedrive_api_base == "https://acme.pipedrive.com"
    assert s.tables.jobs == "devjobs" and s.tables.checkpoints == "devcheckpoints"
    assert (s.order_queue, s.master_queue, s.poll_schedule) == ("order-build", "master-push", "0 */5 * * * *")
    assert s.retry_policy().max_inline_wait == 12.5
    assert s.storage.connection_string is not None
    assert s.storage.connection_string.get_secret_value() == DEV_STORAGE_CONNECTION_STRING


def test_identity_based_storage(env: pytest.MonkeyPatch) -> None:
    env.delenv("AzureWebJobsStorage")
    env.setenv("AzureWebJobsStorage__accountName", "mlconn")
    target = get_settings().storage
    assert target.connection_string is None
    assert target.table_endpoint == "https://mlconn.table.core.windows.net"
    assert target.queue_endpoint == "https://mlconn.queue.core.windows.net"


def test_max_dequeue_count_default_matches_host_json() -> None:
    import json
    from pathlib import Path

    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    assert (
        load_settings(**BASE_ENV, AzureWebJobsStorage="x").max_dequeue_count
        == host["extensions"]["queues"]["maxDequeueCount"]
    )


def test_secrets_are_not_in_repr_or_logs(env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    key = "AccountKey=TOPSECRETKEY=="
    env.setenv("AzureWebJobsStorage", f"DefaultEndpointsProtocol=https;AccountName=a;{key}")
    env.setenv("LOCAL_SECRETS_KEY", "local-key-value")
    s = get_settings()
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s / %r / %s", s, s, s.model_dump())
    for text in (repr(s), str(s), caplog.text, s.model_dump_json()):
        assert "TOPSECRETKEY" not in text and "local-key-value" not in text
