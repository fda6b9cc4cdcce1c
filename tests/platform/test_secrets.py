import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.errors import ConfigError
from connector.secrets import LocalSecretStore, SecretNames, SecretStore, open_secret_store, write_key_file
from connector.settings import Settings

PLAINTEXT = "pd-token-0123456789abcdef"


async def test_local_round_trip_and_file_is_encrypted(platform_settings: Settings) -> None:
    store = open_secret_store(platform_settings)
    assert isinstance(store, LocalSecretStore) and isinstance(store, SecretStore)
    await store.set(SecretNames.PIPEDRIVE_API_TOKEN, PLAINTEXT)
    await store.set(SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN, "refresh-1")
    await store.set(SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN, "refresh-2")  # written back after a refresh
    again = open_secret_store(platform_settings)  # a new instance reads what the first wrote
    assert await again.get(SecretNames.PIPEDRIVE_API_TOKEN) == PLAINTEXT
    assert await again.get(SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN) == "refresh-2"
    raw = platform_settings.local_secrets_file.read_bytes()
    assert PLAINTEXT.encode() not in raw and b"refresh-2" not in raw and b"pipedrive" not in raw
    assert platform_settings.local_secrets_file.stat().st_mode & 0o777 == 0o600
    await store.close()


async def test_missing_secret_names_secret_and_store(platform_settings: Settings) -> None:
    store = open_secret_store(platform_settings)
    await store.set(SecretNames.PIPEDRIVE_API_TOKEN, PLAINTEXT)
    with pytest.raises(ConfigError) as info:
        await store.get(SecretNames.D365_CLIENT_SECRET)
    text = str(info.value)
    assert "d365-client-secret" in text and str(platform_settings.local_secrets_file) in text
    assert PLAINTEXT not in text


async def test_wrong_key_is_clear_and_loses_nothing(platform_settings: Settings) -> None:
    await open_secret_store(platform_settings).set(SecretNames.D365_CLIENT_SECRET, PLAINTEXT)
    before = platform_settings.local_secrets_file.read_bytes()
    other = LocalSecretStore(platform_settings.local_secrets_file, Fernet.generate_key())
    with pytest.raises(ConfigError, match="wrong key"):
        await other.get(SecretNames.D365_CLIENT_SECRET)
    with pytest.raises(ConfigError, match="wrong key"):
        await other.set(SecretNames.D365_CLIENT_SECRET, "overwrite")
    assert platform_settings.local_secrets_file.read_bytes() == before
    assert await open_secret_store(platform_settings).get(SecretNames.D365_CLIENT_SECRET) == PLAINTEXT


@pytest.mark.parametrize("content", [b"garbage not a token", b""])
async def test_corrupt_file_is_clear_and_left_untouched(platform_settings: Settings, content: bytes) -> None:
    platform_settings.local_secrets_file.write_bytes(content)
    store = open_secret_store(platform_settings)
    with pytest.raises(ConfigError, match="corrupt"):
        await store.get(SecretNames.PIPEDRIVE_API_TOKEN)
    with pytest.raises(ConfigError):
        await store.set(SecretNames.PIPEDRIVE_API_TOKEN, "x")
    assert platform_settings.local_secrets_file.read_bytes() == content


async def test_decrypted_but_not_a_json_object_is_corrupt(platform_settings: Settings) -> None:
    assert platform_settings.local_secrets_key is not None
    key = platform_settings.local_secrets_key.get_secret_value().encode()
    platform_settings.local_secrets_file.write_bytes(Fernet(key).encrypt(b"[1,2]"))
    with pytest.raises(ConfigError, match="corrupt"):
        await open_secret_store(platform_settings).get(SecretNames.PIPEDRIVE_API_TOKEN)


async def test_key_file_must_be_private(platform_settings: Settings, tmp_path: Path) -> None:
    key_file = tmp_path / "k" / "secrets.key"
    write_key_file(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    settings = platform_settings.model_copy(update={"local_secrets_key": None, "local_secrets_key_file": key_file})
    store = open_secret_store(settings)
    await store.set(SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD, "pw")
    assert await store.get(SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD) == "pw"
    os.chmod(key_file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        open_secret_store(settings)


def test_missing_or_bad_key_names_the_setting(platform_settings: Settings) -> None:
    no_key = platform_settings.model_copy(update={"local_secrets_key": None, "local_secrets_key_file": None})
    with pytest.raises(ConfigError, match="LOCAL_SECRETS_KEY or LOCAL_SECRETS_KEY_FILE"):
        open_secret_store(no_key)
    from pydantic import SecretStr

    bad = platform_settings.model_copy(update={"local_secrets_key": SecretStr("short-secret")})
    with pytest.raises(ConfigError) as info:
        open_secret_store(bad)
    assert "LOCAL_SECRETS_KEY is not a Fernet key" in str(info.value) and "short-secret" not in str(info.value)


async def test_invalid_secret_name_is_refused(platform_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="invalid secret name"):
        await open_secret_store(platform_settings).set("pipedrive_api_token", "x")


def test_key_vault_is_chosen_when_configured(platform_settings: Settings) -> None:
    from connector.secrets import KeyVaultSecretStore

    kv = platform_settings.model_copy(update={"key_vault_url": "https://mlconn-kv.vault.azure.net"})
    store = open_secret_store(kv)
    assert isinstance(store, KeyVaultSecretStore) and "mlconn-kv" in store.description


def test_secrets_new_key_makes_the_key_file_a_first_run_needs_and_never_replaces_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from connector.cli import app
    from connector.settings import get_settings
    from tests.fixtures.platform import BASE_ENV

    key_file = tmp_path / ".ml-connector" / "secrets.key"
    for name in ("LOCAL_SECRETS_KEY", "KEY_VAULT_URL", "local_secrets_key", "key_vault_url"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**BASE_ENV, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOCAL_SECRETS_KEY_FILE", str(key_file))
    monkeypatch.setenv("LOCAL_SECRETS_FILE", str(tmp_path / "secrets.enc"))
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="ml-connector secrets new-key"):
            open_secret_store(get_settings())  # what a first run meets, with the fix in it
        made = CliRunner().invoke(app, ["secrets", "new-key"])
        assert made.exit_code == 0, made.output
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_bytes()
        assert open_secret_store(get_settings())  # the store opens with it
        again = CliRunner().invoke(app, ["secrets", "new-key"])
        assert again.exit_code == 2 and "kept" in again.output and key_file.read_bytes() == key
    finally:
        get_settings.cache_clear()
