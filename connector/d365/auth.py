"""Entra ID bearer tokens for D365 F&O through azure-identity, as a `RefreshingAuth`.

Scope is `{environment URL}/.default` (no trailing slash, lower case: the token `aud` must match,
docs/api-facts.md, D365 §1). The token is cached and renewed before expiry (lifetimes are 60-90 min in Entra
but can be short in the sandbox). A 401 renews once: azure-identity would hand back its cached
token, so renewal builds a fresh credential from the factory, then retries the request once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import httpx
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from connector.api_auth import RefreshingAuth
from connector.errors import AuthError, TransientError


class AsyncTokenCredential(Protocol):
    """The part of azure.identity.aio credentials we use."""

    async def get_token(self, *scopes: str) -> AccessToken: ...

    async def close(self) -> None: ...


CredentialFactory = Callable[[], AsyncTokenCredential]


def scope_for(environment_url: str) -> str:
    return environment_url.rstrip("/").lower() + "/.default"


class D365TokenAuth(RefreshingAuth[str]):
    """The Entra ID bearer token for one F&O environment (renewal rules: connector.api_auth)."""

    def __init__(
        self,
        credential_factory: CredentialFactory,
        environment_url: str,
        *,
        renew_margin: float = 300.0,
        clock: Callable[[], float] = time.time,  # azure-identity's `expires_on` is epoch seconds
    ) -> None:
        super().__init__(margin=renew_margin, clock=clock)
        self._factory = credential_factory
        self._credential: AsyncTokenCredential | None = None
        self.scope = scope_for(environment_url)

    def bearer(self, token: str) -> str:
        return token

    async def _obtain(self, *, refused: bool) -> tuple[str, float]:
        # azure-identity would hand back its cached token after a 401: renew from a new credential.
        if refused:
            await self.aclose()
        if self._credential is None:
            self._credential = self._factory()
        try:
            access = await self._credential.get_token(self.scope)
        except ClientAuthenticationError as exc:
            # azure-identity messages name the tenant/client and the STS error, never the secret.
            raise AuthError(f"Entra ID refused the D365 credential: {_first_line(exc.message)}") from None
        except (OSError, httpx.HTTPError) as exc:
            raise TransientError(f"Entra ID token endpoint unreachable: {type(exc).__name__}") from None
        if not refused and access.token == self._token:
            # azure-identity handed back its cached, nearly expired token: renew from a new credential.
            return await self._obtain(refused=True)
        return access.token, float(access.expires_on)

    async def aclose(self) -> None:
        if self._credential is not None:
            await self._credential.close()
            self._credential = None


def _first_line(message: str | None) -> str:
    return (message or "authentication failed").strip().splitlines()[0][:300]


def _authority_options(authority: str | None, ca_bundle: str | Path | None) -> dict[str, object]:
    """Only for the sandbox's Entra-like endpoint; production uses the default authority."""
    kwargs: dict[str, object] = {}
    if authority:
        kwargs.update(authority=authority, disable_instance_discovery=True)
    if ca_bundle:
        kwargs["connection_verify"] = str(ca_bundle)
    return kwargs


def client_secret_factory(
    tenant_id: str,
    client_id: str,
    client_secret: str,
    *,
    authority: str | None = None,
    ca_bundle: str | Path | None = None,
) -> CredentialFactory:
    """ClientSecretCredential; `authority`/`ca_bundle` only for the sandbox's Entra-like endpoint."""

    def make() -> AsyncTokenCredential:
        from azure.identity.aio import ClientSecretCredential

        kwargs = _authority_options(authority, ca_bundle)
        return ClientSecretCredential(tenant_id, client_id, client_secret, **kwargs)

    return make


def managed_identity_factory(client_id: str | None = None) -> CredentialFactory:
    """System-assigned identity, or the user-assigned one with this client id."""

    def make() -> AsyncTokenCredential:
        from azure.identity.aio import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=client_id)

    return make


def certificate_factory(
    tenant_id: str,
    client_id: str,
    certificate_path: str | Path,
    *,
    authority: str | None = None,
    ca_bundle: str | Path | None = None,
) -> CredentialFactory:
    def make() -> AsyncTokenCredential:
        from azure.identity.aio import CertificateCredential

        kwargs = _authority_options(authority, ca_bundle)
        return CertificateCredential(tenant_id, client_id, str(certificate_path), **kwargs)

    return make
