"""Build a D365Client from the settings object and the secret store (one place for wiring)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import httpx

from connector.d365.auth import (
    CredentialFactory,
    D365TokenAuth,
    certificate_factory,
    client_secret_factory,
    managed_identity_factory,
)
from connector.d365.client import D365Client
from connector.errors import ConfigError
from connector.retry import RetryPolicy
from connector.secret_names import SecretNames


class D365Settings(Protocol):
    """The attributes of connector.settings.Settings this factory reads."""

    @property
    def d365_environment_url(self) -> str: ...
    @property
    def d365_tenant_id(self) -> str: ...
    @property
    def d365_client_id(self) -> str: ...
    @property
    def d365_credential(self) -> str: ...
    @property
    def d365_certificate_path(self) -> Path | None: ...
    @property
    def d365_authority_host(self) -> str | None: ...
    @property
    def d365_ca_bundle(self) -> Path | None: ...
    @property
    def d365_default_legal_entity(self) -> str | None: ...
    def retry_policy(self) -> RetryPolicy: ...


class Secrets(Protocol):
    async def get(self, name: str) -> str: ...


async def credential_factory_for(settings: D365Settings, secrets: Secrets) -> CredentialFactory:
    """The azure-identity credential for `d365_credential`; the secret is read now, never logged."""
    mode = settings.d365_credential
    authority, ca = settings.d365_authority_host, settings.d365_ca_bundle
    if mode == "client_secret":
        secret = await secrets.get(SecretNames.D365_CLIENT_SECRET)
        return client_secret_factory(
            settings.d365_tenant_id, settings.d365_client_id, secret, authority=authority, ca_bundle=ca
        )
    if mode == "managed_identity":
        return managed_identity_factory(settings.d365_client_id or None)
    if mode == "certificate":
        if settings.d365_certificate_path is None:
            raise ConfigError("D365_CERTIFICATE_PATH is required when D365_CREDENTIAL is certificate")
        return certificate_factory(
            settings.d365_tenant_id,
            settings.d365_client_id,
            settings.d365_certificate_path,
            authority=authority,
            ca_bundle=ca,
        )
    raise ConfigError(f"D365_CREDENTIAL must be client_secret, managed_identity or certificate, not {mode!r}")


async def open_d365(
    settings: D365Settings,
    secrets: Secrets,
    *,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    http_timeout: float = 60,
) -> D365Client:
    """A ready client; `policy` overrides `settings.retry_policy()`."""
    factory = await credential_factory_for(settings, secrets)
    auth = D365TokenAuth(factory, settings.d365_environment_url)
    verify: str | bool = str(settings.d365_ca_bundle) if settings.d365_ca_bundle else True
    return D365Client(
        settings.d365_environment_url,
        auth,
        policy=policy or settings.retry_policy(),
        transport=transport,
        verify=verify,
        timeout=http_timeout,
        default_legal_entity=settings.d365_default_legal_entity,
    )
