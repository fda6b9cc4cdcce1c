"""Where credentials live: Azure Key Vault in Azure, a Fernet-encrypted local file everywhere else.

Both stores speak the same small protocol, so clients (Pipedrive OAuth refresh writes the new refresh
token back) never know which one they have. Errors name the secret and the store, never a value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from connector.errors import ConfigError, TransientError
from connector.redact import remember
from connector.secret_names import SecretNames

__all__ = ["SecretNames"]  # the names live in connector.secret_names; importable from here too

if TYPE_CHECKING:
    from connector.settings import Settings

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")  # Key Vault's rule; the local store follows it too


class MissingSecretError(ConfigError):
    """The store answered, and has no secret of that name."""


@runtime_checkable
class SecretStore(Protocol):
    """Async get/set of named secrets. `get` raises ConfigError naming the secret and store if absent."""

    description: str

    async def get(self, name: str) -> str: ...

    async def set(self, name: str, value: str) -> None: ...

    async def close(self) -> None: ...


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"invalid secret name {name!r}: use 1-127 letters, digits and hyphens")
    return name


def _read_key(key: SecretStr | None, key_file: Path | None) -> bytes:
    """The Fernet key from LOCAL_SECRETS_KEY or a 0600 key file; errors name the setting, not the key."""
    if key is not None:
        raw = key.get_secret_value().strip().encode()
        source = "LOCAL_SECRETS_KEY"
    elif key_file is not None:
        try:
            mode = key_file.stat().st_mode
        except OSError:
            raise ConfigError(
                f"LOCAL_SECRETS_KEY_FILE {key_file} cannot be read; a first run makes it with `ml-connector secrets new-key`"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"LOCAL_SECRETS_KEY_FILE {key_file} is accessible by group/others; run `chmod 600 {key_file}`"
            )
        raw = key_file.read_bytes().strip()
        source = f"LOCAL_SECRETS_KEY_FILE {key_file}"
    else:
        raise ConfigError(
            "the local secret store needs a key: set LOCAL_SECRETS_KEY or LOCAL_SECRETS_KEY_FILE "
            "(a file such as .ml-connector/secrets.key, which `ml-connector secrets new-key` makes)"
        )
    try:
        if len(base64.urlsafe_b64decode(raw)) != 32:
            raise ValueError
    except (ValueError, binascii.Error):
        raise ConfigError(f"{source} is not a Fernet key (32 url-safe base64 bytes)") from None
    return raw


def write_key_file(path: Path) -> None:
    """Create a new random key file with 0600 permissions (refuses to overwrite an existing one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key())


class LocalSecretStore:
    """Secrets as one Fernet-encrypted JSON object in a file; writes are atomic (temp file + rename).

    A corrupt file or a wrong key is a ConfigError and the file is never overwritten, so nothing is lost.
    Writes from one process are serialised; this store is for one host (dev, demo, a single VM).
    """

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._fernet = Fernet(key)
        self._lock = asyncio.Lock()
        self.description = f"local secret file {path}"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalSecretStore:
        return cls(settings.local_secrets_file, _read_key(settings.local_secrets_key, settings.local_secrets_key_file))

    def _load(self) -> dict[str, str]:
        try:
            token = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            plain = self._fernet.decrypt(token.strip())
        except InvalidToken:
            raise ConfigError(
                f"{self.description} cannot be decrypted: wrong key (LOCAL_SECRETS_KEY / LOCAL_SECRETS_KEY_FILE) "
                "or the file is corrupt; it was left untouched"
            ) from None
        try:
            data = json.loads(plain)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ConfigError(f"{self.description} is corrupt (not a JSON object of strings); it was left untouched")
        return data

    def _save(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        token = self._fernet.encrypt(json.dumps(data, sort_keys=True).encode())
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".secrets-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(token)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, name: str) -> str:
        check_name(name)
        async with self._lock:
            data = await asyncio.to_thread(self._load)
        if name not in data:
            raise MissingSecretError(f"secret {name!r} is not set in {self.description}")
        remember(data[name])
        return data[name]

    async def set(self, name: str, value: str) -> None:
        check_name(name)
        remember(value)
        async with self._lock:
            data = await asyncio.to_thread(self._load)
            data[name] = value
            await asyncio.to_thread(self._save, data)

    async def names(self) -> list[str]:
        async with self._lock:
            return sorted(await asyncio.to_thread(self._load))

    async def close(self) -> None:
        return None


class KeyVaultSecretStore:
    """Azure Key Vault through the async SDK and DefaultAzureCredential, cached for a short TTL.

    Key Vault throttles per vault, and Microsoft's guidance is to cache; a refreshed OAuth token written
    with `set` updates the cache at once so this instance never reads a stale refresh token.
    """

    def __init__(self, vault_url: str, *, ttl: float = 300.0, credential: Any = None, **client_kwargs: Any) -> None:
        self.vault_url = vault_url
        self._client_kwargs = client_kwargs  # e.g. connection_verify for a loopback test vault
        self.description = f"Key Vault {vault_url}"
        self._ttl = ttl
        self._cache: dict[str, tuple[float, str]] = {}
        self._credential = credential
        self._client: Any = None
        self._owns_credential = credential is None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyVaultSecretStore:
        assert settings.key_vault_url is not None
        return cls(settings.key_vault_url, ttl=settings.secret_cache_seconds)

    def _secret_client(self) -> Any:
        if self._client is None:
            from azure.identity.aio import DefaultAzureCredential
            from azure.keyvault.secrets.aio import SecretClient

            if self._credential is None:
                self._credential = DefaultAzureCredential()
            self._client = SecretClient(vault_url=self.vault_url, credential=self._credential, **self._client_kwargs)
        return self._client

    async def get(self, name: str) -> str:
        check_name(name)
        cached = self._cache.get(name)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            secret = await self._secret_client().get_secret(name)
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientError(f"{self.description} unreachable reading {name!r} ({type(exc).__name__})") from None
        except ResourceNotFoundError:
            raise MissingSecretError(f"secret {name!r} is not set in {self.description}") from None
        except ClientAuthenticationError as exc:
            raise ConfigError(
                f"cannot authenticate to {self.description} to read {name!r}: {type(exc).__name__}"
            ) from None
        except HttpResponseError as exc:
            if exc.status_code in (401, 403):
                raise ConfigError(f"no permission to read secret {name!r} in {self.description}") from None
            raise TransientError(f"{self.description} failed reading {name!r} (HTTP {exc.status_code})") from None
        if secret.value is None:
            raise ConfigError(f"secret {name!r} in {self.description} has no value")
        self._cache[name] = (time.monotonic() + self._ttl, secret.value)
        remember(secret.value)
        return str(secret.value)

    async def set(self, name: str, value: str) -> None:
        check_name(name)
        remember(value)
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        try:
            await self._secret_client().set_secret(name, value)
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientError(f"{self.description} unreachable writing {name!r} ({type(exc).__name__})") from None
        except HttpResponseError as exc:
            raise TransientError(f"{self.description} failed writing {name!r} (HTTP {exc.status_code})") from None
        self._cache[name] = (time.monotonic() + self._ttl, value)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._credential is not None and self._owns_credential:
            await self._credential.close()


def open_secret_store(settings: Settings) -> SecretStore:
    """Key Vault when KEY_VAULT_URL is set, else the local encrypted file (the embedded default)."""
    if settings.key_vault_url:
        return KeyVaultSecretStore.from_settings(settings)
    return LocalSecretStore.from_settings(settings)
