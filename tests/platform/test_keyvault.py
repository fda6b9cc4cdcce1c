from collections.abc import AsyncIterator

import pytest

from connector.errors import ConfigError
from connector.secrets import KeyVaultSecretStore, SecretNames
from tests.platform.keyvault_sim import KeyVaultSim, StaticCredential


@pytest.fixture
async def vault() -> AsyncIterator[KeyVaultSim]:
    sim = await KeyVaultSim().start()
    try:
        yield sim
    finally:
        await sim.stop()


def open_store(vault: KeyVaultSim, ttl: float = 300) -> KeyVaultSecretStore:
    return KeyVaultSecretStore(
        vault.url,
        ttl=ttl,
        credential=StaticCredential(),
        connection_verify=vault.ca_path,
        verify_challenge_resource=False,  # the loopback vault is not under *.vault.azure.net
    )


async def test_get_is_cached_and_set_refreshes_the_cache(vault: KeyVaultSim) -> None:
    vault.secrets[SecretNames.D365_CLIENT_SECRET] = "d365-s3cret"
    store = open_store(vault)
    try:
        assert await store.get(SecretNames.D365_CLIENT_SECRET) == "d365-s3cret"
        assert await store.get(SecretNames.D365_CLIENT_SECRET) == "d365-s3cret"
        assert vault.reads == 1  # second read served from the cache
        await store.set(SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN, "refresh-2")
        assert vault.secrets[SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN] == "refresh-2"
        assert await store.get(SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN) == "refresh-2"
        assert vault.reads == 1
    finally:
        await store.close()


async def test_expired_cache_reads_again(vault: KeyVaultSim) -> None:
    vault.secrets["pipedrive-api-token"] = "v1"
    store = open_store(vault, ttl=0)
    try:
        assert await store.get("pipedrive-api-token") == "v1"
        vault.secrets["pipedrive-api-token"] = "v2"  # rotated in the vault
        assert await store.get("pipedrive-api-token") == "v2"
    finally:
        await store.close()


async def test_missing_and_forbidden_secrets_name_secret_and_vault(vault: KeyVaultSim) -> None:
    vault.secrets["d365-client-secret"] = "hidden-value"
    vault.forbidden.add("d365-client-secret")
    store = open_store(vault)
    try:
        with pytest.raises(ConfigError) as missing:
            await store.get(SecretNames.PIPEDRIVE_API_TOKEN)
        assert "pipedrive-api-token" in str(missing.value) and vault.url in str(missing.value)
        with pytest.raises(ConfigError) as denied:
            await store.get("d365-client-secret")
        assert "no permission" in str(denied.value) and "hidden-value" not in str(denied.value)
    finally:
        await store.close()
